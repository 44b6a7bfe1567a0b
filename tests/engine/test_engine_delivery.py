"""Delivery and ownership of work items on stub steps and a FakeClock: duplicate
deliveries, a job leased by another worker, a stale worker fenced out, timers and scheduled
starts across a worker restart, items reclaimed from a dead worker."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from jobs.config.inventory import Inventory
from jobs.config.settings import Settings
from jobs.procedures import UPGRADE
from jobs.rules.model import State, Step
from jobs.steps.base import StepContext, StepResult
from jobs.store.keys import Keys
from jobs.store.lease import Lease
from jobs.store.work_queue import WorkItem, WorkQueue
from jobs.worker import step_runner as R
from tests.engine.engine_support import APPROVER, Engine, Stubs
from tests.fakes import FakeClock


async def test_duplicate_deliveries_are_harmless(engine: Engine, stubs: Stubs) -> None:
    job = await engine.create()
    for _ in range(3):
        await engine.queue.enqueue(job.id)
    await engine.drain()
    await engine.service.approve(job.id, await engine.gate(job.id), APPROVER)
    for _ in range(3):
        await engine.queue.enqueue(job.id)
    await engine.drain()  # the duplicates of a waiting job do not poll early
    assert stubs.runs.count(Step.WATCH_REBOOT) == 1
    await engine.queue.enqueue(job.id, "poll", "not-the-current-token")
    await engine.drain()
    assert stubs.runs.count(Step.WATCH_REBOOT) == 1
    job = await engine.run_until(job.id, lambda j: j.open_gate() is not None)
    gate = await engine.gate(job.id)
    await engine.service.approve(job.id, gate, APPROVER)
    for _ in range(3):
        await engine.queue.enqueue(job.id)
    done = await engine.run_until(job.id, lambda j: j.terminal)
    assert done.state is State.SUCCEEDED
    assert stubs.effects == {"disable_logins": 1, "install": 1, "enable_logins": 1}
    for step in UPGRADE.steps:
        if step is not Step.WATCH_REBOOT and step is not Step.SETTLE:
            assert stubs.runs.count(step) == 1, step


async def test_item_for_a_job_held_by_another_worker_is_retried(
    engine: Engine, redis: aioredis.Redis, keys: Keys, stubs: Stubs
) -> None:
    job = await engine.create()
    other = Lease(redis, keys, job.id, 30)
    assert await other.acquire()
    assert await engine.drain() == [R.BUSY]
    assert await engine.timer_names(job.id) == ["retry"]
    assert stubs.runs == []
    await other.release()
    await engine.tick(1.0)
    assert stubs.runs[0] is Step.PREFLIGHT


async def test_a_lease_freed_moments_later_is_taken_without_parking_the_item(
    engine: Engine, redis: aioredis.Redis, keys: Keys, stubs: Stubs,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The usual case with several workers: the holder just committed the previous step.
    job = await engine.create()
    other = Lease(redis, keys, job.id, 30)
    assert await other.acquire()
    fake_sleep = engine.clock.sleep

    async def holder_lets_go(seconds: float) -> None:
        await other.release()
        await fake_sleep(seconds)

    monkeypatch.setattr(engine.clock, "sleep", holder_lets_go)
    outcomes = await engine.drain()
    assert R.BUSY not in outcomes
    assert stubs.runs[0] is Step.PREFLIGHT
    assert "retry" not in await engine.timer_names(job.id)


async def test_a_stale_workers_writes_are_refused_after_takeover(
    redis: aioredis.Redis,
    keys: Keys,
    settings: Settings,
    inventory: Inventory,
    clock: FakeClock,
    stubs: Stubs,
) -> None:
    """Worker A stalls inside INSTALL past its lease; B takes over and installs; A's
    checkpoint is fenced out, so A never installs."""
    short = settings.model_copy(update={"PPS_LEASE_SECONDS": 0.2})
    release_a = asyncio.Event()
    entered = asyncio.Event()
    real = stubs.registry()

    async def slow_install(ctx: StepContext) -> StepResult:
        if not entered.is_set():  # only worker A stalls
            entered.set()
            await release_a.wait()
        return await real[Step.INSTALL](ctx)

    steps = {**real, Step.INSTALL: slow_install}
    a = await Engine(redis, keys, short, inventory, clock, steps, consumer="A").start()
    b = await Engine(redis, keys, short, inventory, clock, steps, consumer="B").start()
    job = await a.create()
    await a.drain()
    await a.service.approve(job.id, await a.gate(job.id), APPROVER)
    items = await a.queue.read(None)
    await a.runner.handle(items[0])  # DISABLE_LOGINS, enqueues INSTALL
    await a.queue.ack(items[0])
    install_item = (await a.queue.read(None))[0]
    task = asyncio.create_task(a.runner.handle(install_item))  # A stalls, never acks
    await entered.wait()
    await asyncio.sleep(0.5)  # A's lease (0.2 s) expires; its item idles
    claimed = await b.queue.reclaim(min_idle_ms=300)
    assert [c.id for c in claimed] == [install_item.id]
    assert await b.runner.handle(claimed[0]) == R.DONE
    await b.queue.ack(claimed[0])
    release_a.set()
    assert await task == R.REFUSED
    assert stubs.effects == {"disable_logins": 1, "install": 1}
    after = await b.job(job.id)
    assert after.step is Step.WATCH_REBOOT and after.fence > 0


async def test_timers_and_scheduled_starts_survive_a_worker_restart(
    redis: aioredis.Redis,
    keys: Keys,
    settings: Settings,
    inventory: Inventory,
    clock: FakeClock,
    stubs: Stubs,
) -> None:
    first = await Engine(
        redis, keys, settings, inventory, clock, stubs.registry(), consumer="w1"
    ).start()
    scheduled = await first.create("east", at=clock.now() + 3600)
    assert await first.timer_names(scheduled.id) == ["start"]
    running = await first.create("solo")
    await first.drain()
    await first.service.approve(running.id, await first.gate(running.id), APPROVER)
    await first.drain()
    assert (await first.job(running.id)).state is State.WAITING
    await first.tick(1800)  # the scheduled job is not due yet
    assert (await first.job(scheduled.id)).state is State.SCHEDULED
    del first  # the worker is gone; only Redis remembers
    second = await Engine(
        redis, keys, settings, inventory, clock, stubs.registry(), consumer="w2"
    ).start()
    await second.tick(1800)
    started = await second.job(scheduled.id)
    assert started.state is State.AWAITING_APPROVAL and started.step is Step.GATE_DISABLE
    resumed = await second.run_until(running.id, lambda j: j.open_gate() is not None)
    assert resumed.step is Step.GATE_ENABLE


async def test_a_scheduled_job_does_not_start_early_on_a_stray_item(
    engine: Engine, stubs: Stubs, clock: FakeClock
) -> None:
    job = await engine.create(at=clock.now() + 600)
    await engine.queue.enqueue(job.id)
    assert await engine.drain() == [R.SKIPPED]
    assert stubs.runs == []
    await engine.tick(600)
    assert stubs.runs == [Step.PREFLIGHT, Step.BACKUP, Step.RECORD, Step.GATE_DISABLE]


async def test_reclaimed_items_of_a_dead_worker_run_elsewhere(
    redis: aioredis.Redis, keys: Keys, engine: Engine, stubs: Stubs
) -> None:
    job = await engine.create()
    dead = WorkQueue(redis, keys, "dead-worker")
    taken = await dead.read(None)
    assert [i.job_id for i in taken] == [job.id]  # delivered, never acknowledged
    assert await engine.queue.reclaim(min_idle_ms=60_000) == []  # not idle long enough
    await asyncio.sleep(0.05)
    claimed = await engine.queue.reclaim(min_idle_ms=20)
    assert [c.id for c in claimed] == [taken[0].id]
    assert await engine.runner.handle(claimed[0]) == R.DONE
    await engine.queue.ack(claimed[0])
    assert await engine.queue.pending_count() == 0
    assert isinstance(claimed[0], WorkItem)


async def test_only_the_fence_stops_a_paused_worker_when_state_and_step_still_match(
    redis: aioredis.Redis,
    keys: Keys,
    settings: Settings,
    inventory: Inventory,
    clock: FakeClock,
    stubs: Stubs,
) -> None:
    """A pauses in INSTALL before its checkpoint; its lease expires and B takes the lease
    (new fence) but has not written yet: state and step are unchanged, the fence refuses A."""
    short = settings.model_copy(update={"PPS_LEASE_SECONDS": 0.2})
    release_a, entered = asyncio.Event(), asyncio.Event()
    real = stubs.registry()

    async def paused_install(ctx: StepContext) -> StepResult:
        entered.set()
        await release_a.wait()
        return await real[Step.INSTALL](ctx)

    a = await Engine(
        redis, keys, short, inventory, clock, {**real, Step.INSTALL: paused_install}
    ).start()
    job = await a.create()
    await a.drain()
    await a.service.approve(job.id, await a.gate(job.id), APPROVER)
    items = await a.queue.read(None)
    await a.runner.handle(items[0])  # DISABLE_LOGINS
    task = asyncio.create_task(a.runner.handle((await a.queue.read(None))[0]))
    await entered.wait()
    before = await a.job(job.id)
    await asyncio.sleep(0.3)
    b_lease = Lease(redis, keys, job.id, 30)
    assert await b_lease.acquire() and b_lease.fence == before.fence + 1
    release_a.set()
    assert await task == R.REFUSED
    assert "install" not in stubs.effects
    after = await a.job(job.id)
    assert (after.state, after.step) == (before.state, before.step) == (State.RUNNING, Step.INSTALL)


async def test_a_burst_of_due_timers_is_released_in_one_tick(
    redis: aioredis.Redis, keys: Keys
) -> None:
    from jobs.store.timers import Timers, member

    timers = Timers(redis, keys)
    now = 1_800_000_000.0
    await redis.zadd(keys.timers, {member(f"J-{i:04d}", "start"): int(now * 1000) - i
                                   for i in range(1030)})
    later = member("J-later", "start")
    await redis.zadd(keys.timers, {later: int(now * 1000) + 5000})
    assert await timers.release_all_due(now) == 1030  # 11 script calls of 100
    assert await redis.xlen(keys.queue) == 1030
    assert list((await timers.all()).keys()) == [later]
    assert await timers.release_all_due(now, batch=7, max_batches=2) == 0
    await redis.zadd(keys.timers, {member(f"K-{i}", "poll"): int(now * 1000) for i in range(30)})
    assert await timers.release_all_due(now, batch=7, max_batches=2) == 14  # bounded per tick
