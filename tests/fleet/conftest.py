"""Fixtures for the fleet tests: the PPS simulator (real HTTP) as the appliances, real Redis
under the test prefix, the production client, and pollers built over them.

Test modules cannot import this file (--import-mode=importlib); they get the helpers
through the `fleet` fixture (a factory of running `FleetEnv`s).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from jobs.appliance.client import make_appliance
from jobs.appliance.protocol import ActiveUsers, Appliance, Overview, SystemInfo
from jobs.config.clock import Clock
from jobs.config.inventory import Cluster, Inventory, parse_inventory
from jobs.config.settings import Settings
from jobs.fleet.poller import FleetPoller
from jobs.store.fleet import FleetStore
from jobs.store.keys import Keys
from sim.pps.config import parse_config
from sim.pps.packages import write_package
from sim.pps.simulator import Simulator
from tests.fakes.clock import FakeClock

OLD, NEW = "9.1R17 (build 27583)", "9.1R18 (build 29865)"


class CountingAppliance:
    """A real client that counts its reads, and how many clients of one cluster (one per
    poller) are reading at the same moment: two overlapping polls make that 2."""

    def __init__(self, inner: Appliance, gauge: dict[str, int], name: str) -> None:
        self.inner, self.gauge, self.name = inner, gauge, name
        self.inflight = 0

    async def _count(self, call: Awaitable[Any]) -> Any:
        g = self.gauge
        g["calls"] += 1
        self.inflight += 1
        if self.inflight == 1:  # this client starts reading: one more poll under way
            g["owners"] += 1
            g["polls"] += 1
            g["max_owners"] = max(g["max_owners"], g["owners"])
        try:
            return await call
        finally:
            self.inflight -= 1
            if self.inflight == 0:
                g["owners"] -= 1

    async def system_info(self, node: str) -> SystemInfo:
        result: SystemInfo = await self._count(self.inner.system_info(node))
        return result

    async def overview(self, node: str) -> Overview:
        result: Overview = await self._count(self.inner.overview(node))
        return result

    async def active_users(self, node: str) -> ActiveUsers:
        result: ActiveUsers = await self._count(self.inner.active_users(node))
        return result

    async def set_login_permission(self, node: str, enabled: bool) -> None:
        raise AssertionError("the fleet poll must not write")

    async def export_config(self, node: str, kind: Any) -> bytes:
        raise AssertionError("the fleet poll must not write")

    async def install(self, node: str, package: Path) -> None:
        raise AssertionError("the fleet poll must not write")

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class FleetEnv:
    """A simulator, its inventory, the store and a way to make pollers."""

    sim: Simulator
    inventory: Inventory
    settings: Settings
    store: FleetStore
    redis: aioredis.Redis
    keys: Keys
    env: dict[str, str]
    clock: FakeClock = field(default_factory=FakeClock)
    gauges: dict[str, dict[str, int]] = field(default_factory=dict)
    clients: list[Appliance] = field(default_factory=list)

    def appliance(self, cluster: Cluster) -> Appliance:
        """The production client for `cluster`, wrapped to count reads per cluster."""
        gauge = self.gauges.setdefault(cluster.name,
                                       {"calls": 0, "owners": 0, "max_owners": 0, "polls": 0})
        client = CountingAppliance(make_appliance(cluster, env=self.env, settings=self.settings),
                                   gauge, cluster.name)
        self.clients.append(client)
        return client

    def poller(self, owner: str = "w1", clock: Clock | None = None) -> FleetPoller:
        cache: dict[str, Appliance] = {}

        def appliances(cluster: Cluster) -> Appliance:
            if cluster.name not in cache:
                cache[cluster.name] = self.appliance(cluster)
            return cache[cluster.name]

        return FleetPoller(self.store, self.inventory, appliances, clock or self.clock,
                           self.settings.PPS_FLEET_POLL_SECONDS, owner)

    def writes(self) -> list[str]:
        """Every write any simulated node received."""
        return [f"{c.name}/{e.node}:{e.call}" for c in self.sim.clusters.values() for e in c.log]


StartFleet = Callable[..., Awaitable[FleetEnv]]


@pytest.fixture
async def fleet(
    redis: aioredis.Redis, keys: Keys, prefix: str, tmp_path: Path
) -> AsyncIterator[StartFleet]:
    """`await fleet({"name": {...sim cluster...}}, **settings)` -> a `FleetEnv`."""
    async with AsyncExitStack() as stack:

        async def start(clusters: dict[str, Any], **kw: Any) -> FleetEnv:
            sim = Simulator(parse_config({"clusters": clusters}, Path(".")))
            await sim.start()
            stack.push_async_callback(sim.stop)
            fw = []
            for version, build in (("9.1R17", 27583), ("9.1R18", 29865)):
                sha = write_package(tmp_path / "fw" / f"pps-{version}.pkg", version, build)
                fw.append({"version": version, "file": f"fw/pps-{version}.pkg", "sha256": sha})
            env = sim.credentials_env()
            inventory = parse_inventory(sim.inventory(fw), tmp_path, env=env)
            values: dict[str, Any] = {"PPS_REDIS_PREFIX": prefix, "PPS_POLL_SECONDS": 0.2,
                                      "PPS_FLEET_POLL_SECONDS": 60.0, **kw}
            settings = Settings(_env_file=None, **values)
            fe = FleetEnv(sim, inventory, settings, FleetStore(redis, keys), redis, keys, env)

            async def close() -> None:
                await asyncio.gather(*(c.aclose() for c in fe.clients))

            stack.push_async_callback(close)
            return fe

        yield start
