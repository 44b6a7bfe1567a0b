"""Fixtures for the rollback's end-to-end tests: the PPS simulator (real HTTP), the real PPS
client, an in-process worker, `JobService` and Redis under the test prefix.

Test modules cannot import this file (--import-mode=importlib); they get a `SimStack`
factory through the `sim_stack` fixture.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from jobs.appliance.client import make_appliance
from jobs.appliance.protocol import Appliance
from jobs.config.clock import SystemClock
from jobs.config.inventory import Cluster, Inventory, parse_inventory
from jobs.config.settings import Settings
from jobs.rules.events import EventKind
from jobs.rules.model import Job
from jobs.service import JobService, UpgradeRequest
from jobs.store.keys import Keys
from jobs.store.wiring import redis_service
from jobs.worker.process import Worker
from sim.pps.config import parse_config
from sim.pps.packages import write_package
from sim.pps.simulator import Simulator
from tests.fakes import E2E_TIMINGS, JobDriver, make_settings, run_worker

REQUESTER, APPROVER = "UREQ0001", "UAPP0002"
FAST = {"install_seconds": 0.1, "reboot_seconds": 0.3, "rejoin_seconds": 0.1}


@dataclass
class SimStack(JobDriver):
    """One set-up: simulator, inventory, service, a running worker."""

    approver = APPROVER

    sim: Simulator
    inventory: Inventory
    settings: Settings
    service: JobService

    async def rollback(
        self, cluster: str, *, dry_run: bool = False, at: float | None = None
    ) -> Job:
        """`/pps rollback <cluster>` as the handler asks for it."""
        job, created = await self.service.create_job(
            UpgradeRequest(
                cluster=cluster,
                requester=REQUESTER,
                channel="C0RB",
                dry_run=dry_run,
                at=at,
                procedure="rollback",
            )
        )
        assert created and job.procedure == "rollback"
        return job

    async def events(self, job_id: str, kind: EventKind) -> list[dict[str, Any]]:
        return [e.data for e in await self.service.store.events(job_id) if e.kind is kind]

    def writes(self, cluster: str) -> dict[str, list[str]]:
        """Per node: every API write received, as `call=detail:status`."""
        c = self.sim.cluster(cluster)
        out: dict[str, list[str]] = {n.name: [] for n in c.nodes}
        for e in c.log:
            out[e.node].append(f"{e.call}={e.detail}:{e.status}")
        return out

    def builds(self, cluster: str) -> list[str]:
        return [n.build for n in self.sim.cluster(cluster).nodes]


StartStack = Callable[..., Awaitable[SimStack]]


@pytest.fixture
async def sim_stack(
    redis: aioredis.Redis, prefix: str, keys: Keys, tmp_path: Path
) -> AsyncIterator[StartStack]:
    """`await sim_stack({"c": {...sim cluster...}}, inventory_edit, **settings)`."""
    async with AsyncExitStack() as stack:

        async def start(
            clusters: dict[str, Any], inventory_edit: dict[str, Any] | None = None, **kw: Any
        ) -> SimStack:
            merged = {
                name: {"sessions": 412, **c, "knobs": {**FAST, **c.get("knobs", {})}}
                for name, c in clusters.items()
            }
            sim = Simulator(parse_config({"clusters": merged}, Path(".")))
            await sim.start()
            stack.push_async_callback(sim.stop)
            fw = []
            for version, build in (("9.1R17", 27583), ("9.1R18", 29865)):
                sha = write_package(tmp_path / "fw" / f"pps-{version}.pkg", version, build)
                fw.append({"version": version, "file": f"fw/pps-{version}.pkg", "sha256": sha})
            data = sim.inventory(fw)
            for name, extra in (inventory_edit or {}).items():
                data["clusters"][name].update(extra)
            env = sim.credentials_env()
            inventory = parse_inventory(data, tmp_path, env=env)
            settings = make_settings(tmp_path, prefix, timings=E2E_TIMINGS, **kw)

            def appliance(cluster: Cluster) -> Appliance:
                return make_appliance(cluster, env=env, settings=settings)

            worker = Worker(
                redis, settings, inventory, appliance_factory=appliance, name="rb", keys=keys
            )
            run_worker(stack, worker)
            service = redis_service(redis, settings, inventory, SystemClock(), keys)
            return SimStack(sim, inventory, settings, service)

        yield start
