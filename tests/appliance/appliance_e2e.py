"""End-to-end harness: JobService + an in-process Worker + the PPS client + the simulator +
Redis, in real time, shrunk (simulator timings of 0.1-0.3 s, PPS_POLL_SECONDS 0.1,
PPS_SETTLE_SECONDS 0.3). `e2e` is a fixture factory: a test module imports it to use it.
Gates are decided through `JobService` by an approver who is not the requester."""

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
from jobs.rules.model import Job, Step
from jobs.service import JobService, UpgradeRequest
from jobs.store.keys import Keys
from jobs.store.wiring import redis_service
from jobs.worker.process import Worker
from sim.pps.simulator import Simulator
from tests.fakes import E2E_TIMINGS, JobDriver, make_settings, run_worker, sim_firmware

REQUESTER, APPROVER = "UREQ0001", "UAPP0002"
RUNNING, TARGET = "9.1R17 (build 27583)", "9.1R18 (build 29865)"
FAST = {"install_seconds": 0.1, "reboot_seconds": 0.3, "rejoin_seconds": 0.1}


@dataclass
class Run(JobDriver):
    """One end-to-end set-up: simulator, inventory, service, a running worker."""

    approver = APPROVER

    sim: Simulator
    inventory: Inventory
    settings: Settings
    service: JobService

    async def create(self, cluster: str) -> Job:
        job, created = await self.service.create_job(
            UpgradeRequest(cluster=cluster, requester=REQUESTER, channel="C0E2E")
        )
        assert created
        return job

    async def events(self, job_id: str, kind: EventKind) -> list[dict[str, Any]]:
        return [e.data for e in await self.service.store.events(job_id) if e.kind is kind]

    def builds(self, cluster: str) -> list[str]:
        return [n.build for n in self.sim.cluster(cluster).nodes]

    def writes(self, cluster: str) -> dict[str, list[str]]:
        """Per node: every API write received, as `call=detail:status`."""
        c = self.sim.cluster(cluster)
        out: dict[str, list[str]] = {n.name: [] for n in c.nodes}
        for e in c.log:
            out[e.node].append(f"{e.call}={e.detail}:{e.status}")
        return out


Start = Callable[..., Awaitable[Run]]


async def start_run(
    stack: AsyncExitStack,
    redis: aioredis.Redis,
    prefix: str,
    keys: Keys,
    tmp_path: Path,
    clusters: dict[str, Any],
    inventory_edit: dict[str, Any] | None = None,
    *,
    make: type[Run] = Run,
    **kw: Any,
) -> Run:
    """Start the simulator with `clusters`, a worker and the service; `make` builds the
    `Run` (a subclass adds its own requests). Everything stops with `stack`."""
    sim = Simulator(sim_config(clusters))
    await sim.start()
    stack.push_async_callback(sim.stop)
    data = sim.inventory(sim_firmware(tmp_path))
    for name, extra in (inventory_edit or {}).items():
        data["clusters"][name].update(extra)
    env = sim.credentials_env()
    inventory = parse_inventory(data, tmp_path, env=env)
    settings = make_settings(tmp_path, prefix, timings=E2E_TIMINGS, **kw)

    def appliance(cluster: Cluster) -> Appliance:
        return make_appliance(cluster, env=env, settings=settings)

    worker = Worker(redis, settings, inventory, appliance_factory=appliance, name="e2e", keys=keys)
    run_worker(stack, worker)
    service = redis_service(redis, settings, inventory, SystemClock(), keys)
    return make(sim, inventory, settings, service)


@pytest.fixture
async def e2e(
    redis: aioredis.Redis, prefix: str, keys: Keys, tmp_path: Path
) -> AsyncIterator[Start]:
    """`await e2e({"c": {...sim cluster...}}, manual=..., **settings)` → a running `Run`."""
    async with AsyncExitStack() as stack:

        async def start(
            clusters: dict[str, Any], inventory_edit: dict[str, Any] | None = None, **kw: Any
        ) -> Run:
            return await start_run(stack, redis, prefix, keys, tmp_path, clusters,
                                   inventory_edit, **kw)

        yield start


def sim_config(clusters: dict[str, Any]) -> Any:
    from sim.pps.config import parse_config

    merged = {
        name: {"sessions": 412, **c, "knobs": {**FAST, **c.get("knobs", {})}}
        for name, c in clusters.items()
    }
    return parse_config({"clusters": merged}, Path("."))


def builds(run: Run, cluster: str) -> list[str]:
    return run.builds(cluster)


async def happy(run: Run, cluster: str) -> Job:
    job = await run.create(cluster)
    await run.approve_at(job.id, Step.GATE_DISABLE)
    await run.approve_at(job.id, Step.GATE_ENABLE)
    return await run.until(job.id, lambda j: j.terminal)
