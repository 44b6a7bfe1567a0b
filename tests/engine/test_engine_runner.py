"""The runner's semantics on stub steps and a FakeClock: failures, reminders, dry runs,
polling timers, duplicates, leases, fencing, restarts."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from engine_support import APPROVER, Engine, Stubs

from jobs.config.inventory import Inventory
from jobs.config.settings import Settings
from jobs.procedures import UPGRADE
from jobs.rules.events import EventKind
from jobs.rules.model import Job, State, Step, StepStatus
from jobs.rules.outputs import InstallOut
from jobs.steps.base import Advance, StepContext, StepResult
from jobs.store.keys import Keys
from jobs.store.lease import Lease
from jobs.store.work_queue import WorkItem, WorkQueue
from jobs.worker import step_runner as R
from tests.fakes.clock import FakeClock


async def to_enable_gate(engine: Engine, cluster: str = "solo") -> Job:
    job = await engine.create(cluster)
    await engine.drain()
    await engine.service.approve(job.id, await engine.gate(job.id), APPROVER)
    return await engine.run_until(
        job.id, lambda j: j.step is Step.GATE_ENABLE and j.open_gate() is not None
    )


async def job_timers(engine: Engine, job_id: str) -> list[str]:
    return [m.split("|")[1] for m in await engine.timers.all(job_id)]


async def test_failure_before_logins_ends_the_job_and_frees_the_cluster(
    engine: Engine, stubs: Stubs, redis: aioredis.Redis, keys: Keys
) -> None:
    stubs.fail_at[Step.BACKUP] = "export refused"
    job = await engine.create()
    await engine.drain()
    done = await engine.job(job.id)
    assert done.state is State.FAILED and done.settled and done.error == "export refused"
    assert done.step_record(Step.BACKUP).status is StepStatus.FAILED
    assert await redis.exists(keys.cluster("solo")) == 0
    assert job.id not in await redis.smembers(keys.active)
    kinds = [e.kind for e in await engine.events(job.id)]
    assert kinds[-3:] == [EventKind.STEP_FAILED, EventKind.STATE, EventKind.FINISHED]
    assert await job_timers(engine, job.id) == []


@pytest.mark.parametrize("step", [Step.DISABLE_LOGINS, Step.INSTALL, Step.WATCH_REBOOT])
async def test_failure_with_logins_disabled_keeps_the_enable_gate_and_reminds(
    engine: Engine, stubs: Stubs, redis: aioredis.Redis, keys: Keys, step: Step
) -> None:
    stubs.fail_at[step] = f"{step.value} broke"
    job = await engine.create()
    await engine.drain()
    await engine.service.approve(job.id, await engine.gate(job.id), APPROVER)
    await engine.drain()
    failed = await engine.job(job.id)
    assert failed.state is State.FAILED and failed.logins_disabled and not failed.settled
    assert failed.step is Step.GATE_ENABLE and failed.error == f"{step.value} broke"
    gate = failed.open_gate()
    assert gate is not None and gate.step is Step.GATE_ENABLE
    alert = await engine.events(job.id, EventKind.LOGINS_DISABLED_ALERT)
    assert len(alert) == 1
    assert (
        "user logins are still disabled on solo; approve the enable request"
        in (alert[0].data["text"])
    )
    assert await redis.hget(keys.cluster("solo"), "job_id") == job.id  # lock kept
    assert await engine.events(job.id, EventKind.FINISHED) == []
    for n in (1, 2, 3):
        await engine.tick(engine.settings.PPS_REMINDER_SECONDS)
        assert len(await engine.events(job.id, EventKind.REMINDER)) == n
    # Approving the enable gate re-enables logins once; the job ends failed, lock released.
    stubs.fail_at.clear()
    await engine.service.approve(job.id, gate.id, APPROVER)
    await engine.drain()
    ended = await engine.job(job.id)
    assert ended.state is State.FAILED and ended.settled and not ended.logins_disabled
    assert stubs.effects.get("enable_logins") == 1
    assert "install" not in stubs.effects or stubs.effects["install"] == 1
    fin = await engine.events(job.id, EventKind.FINISHED)
    assert [e.data["state"] for e in fin] == ["failed"]
    assert await redis.exists(keys.cluster("solo")) == 0
    await engine.tick(engine.settings.PPS_REMINDER_SECONDS * 3)
    assert len(await engine.events(job.id, EventKind.REMINDER)) == 3  # reminders stopped
    assert await job_timers(engine, job.id) == []


async def test_reminders_run_only_while_logins_are_disabled_and_a_human_is_awaited(
    engine: Engine,
) -> None:
    job = await engine.create()
    await engine.drain()
    await engine.tick(engine.settings.PPS_REMINDER_SECONDS * 3)  # disable gate: logins on
    assert await engine.events(job.id, EventKind.REMINDER) == []
    job = await to_enable_gate_of(engine, job)
    assert await job_timers(engine, job.id) == ["reminder"]
    await engine.tick(engine.settings.PPS_REMINDER_SECONDS)
    await engine.tick(engine.settings.PPS_REMINDER_SECONDS)
    reminders = await engine.events(job.id, EventKind.REMINDER)
    assert len(reminders) == 2
    assert reminders[0].data["since"] == job.logins_disabled_at
    assert "disabled since" in reminders[0].data["text"]
    await engine.service.approve(job.id, await engine.gate(job.id), APPROVER)
    done = await engine.run_until(job.id, lambda j: j.terminal)
    assert done.state is State.SUCCEEDED
    await engine.tick(engine.settings.PPS_REMINDER_SECONDS * 3)
    assert len(await engine.events(job.id, EventKind.REMINDER)) == 2
    assert await job_timers(engine, job.id) == []


async def to_enable_gate_of(engine: Engine, job: Job) -> Job:
    await engine.service.approve(job.id, await engine.gate(job.id), APPROVER)
    return await engine.run_until(
        job.id, lambda j: j.step is Step.GATE_ENABLE and j.open_gate() is not None
    )


async def test_logins_flag_and_summary(engine: Engine, clock: FakeClock) -> None:
    job = await to_enable_gate(engine)
    assert job.logins_disabled and job.logins_disabled_at is not None
    clock.advance(120)
    await engine.service.approve(job.id, await engine.gate(job.id), APPROVER)
    done = await engine.run_until(job.id, lambda j: j.terminal)
    assert not done.logins_disabled and done.logins_enabled_at is not None
    assert done.logins_disabled_at is not None
    summary = (await engine.events(job.id, EventKind.FINISHED))[0].data["summary"]
    off = done.logins_enabled_at - done.logins_disabled_at
    assert summary["logins_disabled_seconds"] == pytest.approx(off)
    assert summary["builds_before"] == {"solo-1": "9.1R17 (build 1)"}
    assert summary["builds_after"] == {"solo-1": "9.1R18 (build 2)"}
    assert summary["backups"] == [{"file": "system.cfg", "size": 10}]
    assert summary["durations"]["settle"] >= engine.settings.PPS_SETTLE_SECONDS


async def test_dry_run_stops_after_preflight_with_the_plan(engine: Engine, stubs: Stubs) -> None:
    job = await engine.create(dry_run=True)
    await engine.drain()
    done = await engine.job(job.id)
    assert done.state is State.SUCCEEDED and done.settled and done.step is Step.PREFLIGHT
    assert stubs.runs == [Step.PREFLIGHT]
    plan = await engine.events(job.id, EventKind.PLAN)
    assert plan[0].data == {
        "plan": {"target": "9.1R18"},
        "preflight": [{"check": "auth", "ok": True}],
    }
    assert len(await engine.events(job.id, EventKind.FINISHED)) == 1


async def test_poll_parks_the_job_on_a_durable_timer(engine: Engine, stubs: Stubs) -> None:
    job = await engine.create()
    await engine.drain()
    await engine.service.approve(job.id, await engine.gate(job.id), APPROVER)
    await engine.drain()
    waiting = await engine.job(job.id)
    assert waiting.state is State.WAITING and waiting.step is Step.WATCH_REBOOT
    assert await job_timers(engine, job.id) == ["poll"]
    due = await engine.timers.due(waiting.wake_timer)
    assert due == pytest.approx(engine.clock.now() + engine.settings.PPS_POLL_SECONDS)
    progress = await engine.events(job.id, EventKind.PROGRESS)
    assert [p.data for p in progress] == [{"step": "watch_reboot", "text": "node rebooted"}]
    await engine.tick(engine.settings.PPS_POLL_SECONDS - 1)  # not yet due
    assert stubs.runs.count(Step.WATCH_REBOOT) == 1
    await engine.tick(1)
    assert stubs.runs.count(Step.WATCH_REBOOT) == 2
    job = await engine.run_until(job.id, lambda j: j.step is Step.SETTLE)
    assert await job_timers(engine, job.id) == ["settle"]


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
    assert await job_timers(engine, job.id) == ["retry"]
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
    assert "retry" not in await job_timers(engine, job.id)


async def test_nothing_runs_while_a_human_is_awaited(engine: Engine, stubs: Stubs) -> None:
    job = await engine.create()
    await engine.drain()
    runs = list(stubs.runs)
    await engine.queue.enqueue(job.id)
    assert await engine.drain() == [R.SKIPPED]
    assert stubs.runs == runs


async def test_a_step_that_crashes_fails_loudly(engine: Engine, stubs: Stubs) -> None:
    async def boom(ctx: StepContext) -> StepResult:
        raise RuntimeError("secret-ish detail")

    engine.runner._steps = {**stubs.registry(), Step.RECORD: boom}
    job = await engine.create()
    await engine.drain()
    done = await engine.job(job.id)
    assert done.state is State.FAILED
    assert done.error == "internal error in Record builds and active sessions: RuntimeError"


async def test_checkpoint_merges_outputs_without_moving_the_job(
    engine: Engine, stubs: Stubs
) -> None:
    seen: list[tuple[State, Step, dict[str, object]]] = []

    async def backup(ctx: StepContext) -> StepResult:
        await ctx.checkpoint(InstallOut(install_sent_at=1.0))
        job = await engine.job(ctx.job.id)
        seen.append((job.state, job.step, job.outputs.dump()))
        await ctx.progress("halfway")
        return Advance(outputs=InstallOut(install_accepted_at=2.0))

    engine.runner._steps = {**stubs.registry(), Step.BACKUP: backup}
    job = await engine.create()
    await engine.drain()
    state, step, outputs = seen[0]
    assert (state, step) == (State.RUNNING, Step.BACKUP) and outputs["install_sent_at"] == 1.0
    after = await engine.job(job.id)
    assert after.outputs.install_sent_at == 1.0 and after.outputs.install_accepted_at == 2.0
    texts = [e.data["text"] for e in await engine.events(job.id, EventKind.PROGRESS)]
    assert texts == ["halfway"]


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
    assert await job_timers(first, scheduled.id) == ["start"]
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
