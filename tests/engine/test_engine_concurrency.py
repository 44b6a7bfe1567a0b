"""A worker runs several work items at once (`PPS_WORKER_CONCURRENCY`), each under its own
lease: a slow step of one job holds up no other job, every held lease is renewed, and a
stopping worker lets running items finish and hands the others back."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from jobs.config.clock import SystemClock
from jobs.config.inventory import Inventory
from jobs.rules.model import Job, State, Step
from jobs.service import UpgradeRequest
from jobs.steps.base import StepContext, StepResult
from jobs.store.keys import Keys
from jobs.store.lease import Lease
from jobs.store.wiring import redis_service
from jobs.worker.process import Worker
from tests.engine.engine_support import REQUESTER, Stubs
from tests.fakes import WORKER_TIMINGS, make_settings

LEASE = WORKER_TIMINGS["PPS_LEASE_SECONDS"]


def at_gate(job: Job) -> bool:
    return job.step is Step.GATE_DISABLE and job.state is State.AWAITING_APPROVAL


async def wait_for(pred: Callable[[], Awaitable[bool]], within: float) -> bool:
    """Real time: poll `pred` until it holds (True) or `within` seconds pass (False)."""
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        if await pred():
            return True
        await asyncio.sleep(0.05)
    return False


@pytest.mark.parametrize("concurrency", [32, 1])
async def test_a_hanging_step_of_one_job_does_not_hold_up_another(
    redis: aioredis.Redis, keys: Keys, prefix: str, tmp_path: Path, inventory: Inventory,
    stubs: Stubs, concurrency: int,
) -> None:
    """Job A's backup hangs (a throttled export); job B, queued after it on the same
    worker, runs preflight, backup and record and opens its gate meanwhile. With one item
    at a time (the old worker) B waits behind A: the check can fail."""
    settings = make_settings(
        tmp_path, prefix, timings=WORKER_TIMINGS, PPS_WORKER_CONCURRENCY=concurrency
    )
    entered, release = asyncio.Event(), asyncio.Event()
    real = stubs.registry()

    async def backup(ctx: StepContext) -> StepResult:
        if ctx.job.cluster == "solo":
            entered.set()
            await release.wait()
        return await real[Step.BACKUP](ctx)

    w = Worker(redis, settings, inventory, steps={**real, Step.BACKUP: backup}, name="w",
               keys=keys)
    task = asyncio.create_task(w.run())
    svc = redis_service(redis, settings, inventory, SystemClock(), keys)
    try:
        a, _ = await svc.create_job(UpgradeRequest("solo", REQUESTER, "C1"))
        await asyncio.wait_for(entered.wait(), 5)
        b, _ = await svc.create_job(UpgradeRequest("east", REQUESTER, "C1"))

        async def b_at_gate() -> bool:
            return at_gate(await svc.get(b.id))

        advanced = await wait_for(b_at_gate, 6 * LEASE)  # A hangs for three leases or more
        assert (await svc.get(a.id)).step is Step.BACKUP  # still hanging
        assert advanced is (concurrency > 1)
        release.set()

        async def a_at_gate() -> bool:
            return at_gate(await svc.get(a.id))

        assert await wait_for(a_at_gate, 5)
        assert await wait_for(b_at_gate, 5)
    finally:
        release.set()
        w.stop()
        await asyncio.wait_for(task, 10)


async def test_every_held_lease_is_renewed_and_no_item_runs_twice(
    redis: aioredis.Redis, keys: Keys, prefix: str, tmp_path: Path, inventory: Inventory,
    stubs: Stubs,
) -> None:
    """Three jobs' backups hang at once on one worker for several leases, a second worker
    beside it: the first keeps all three leases and items (nobody else can take a lease,
    nothing is reclaimed), so each backup runs exactly once."""
    settings = make_settings(tmp_path, prefix, timings=WORKER_TIMINGS)
    release = asyncio.Event()
    entered: list[str] = []
    real = stubs.registry()

    async def backup(ctx: StepContext) -> StepResult:
        entered.append(ctx.job.cluster)
        await release.wait()
        return await real[Step.BACKUP](ctx)

    steps = {**real, Step.BACKUP: backup}
    w1 = Worker(redis, settings, inventory, steps=steps, name="w1", keys=keys)
    t1 = asyncio.create_task(w1.run())
    svc = redis_service(redis, settings, inventory, SystemClock(), keys)
    jobs = [(await svc.create_job(UpgradeRequest(c, REQUESTER, "C1")))[0]
            for c in ("solo", "east", "mesh")]

    async def all_in() -> bool:
        return len(entered) == 3

    assert await wait_for(all_in, 5)
    w2 = Worker(redis, settings, inventory, steps=steps, name="w2", keys=keys)
    t2 = asyncio.create_task(w2.run())
    try:
        await asyncio.sleep(4 * LEASE)  # two leases idle would let w2 reclaim the items
        for job in jobs:
            probe = Lease(redis, keys, job.id, 5.0)
            assert not await probe.acquire(), f"{job.cluster}: its lease was not renewed"
        assert sorted(entered) == ["east", "mesh", "solo"]
        release.set()
        for job in jobs:
            async def gate(j: Job = job) -> bool:
                return at_gate(await svc.get(j.id))

            assert await wait_for(gate, 5)
        assert sorted(entered) == ["east", "mesh", "solo"], "a backup ran twice"
    finally:
        release.set()
        for w in (w1, w2):
            w.stop()
        await asyncio.wait_for(asyncio.gather(t1, t2), 10)
