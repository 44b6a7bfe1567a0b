"""The runner's outcomes on stub steps and a FakeClock: failures, reminders, the logins
flag and summary, dry runs, polling timers, a crashing step, checkpoints.

Delivery and ownership (duplicates, leases, fencing, restarts): test_engine_delivery.py."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from jobs.rules.events import EventKind
from jobs.rules.model import Job, State, Step, StepStatus
from jobs.rules.outputs import InstallOut
from jobs.steps.base import Advance, StepContext, StepResult
from jobs.store.keys import Keys
from jobs.worker import step_runner as R
from tests.engine.engine_support import APPROVER, Engine, Stubs
from tests.fakes import FakeClock


async def to_enable_gate(engine: Engine, cluster: str = "solo") -> Job:
    job = await engine.create(cluster)
    await engine.drain()
    await engine.service.approve(job.id, await engine.gate(job.id), APPROVER)
    return await engine.run_until(
        job.id, lambda j: j.step is Step.GATE_ENABLE and j.open_gate() is not None
    )


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
    assert await engine.timer_names(job.id) == []


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
    assert await engine.timer_names(job.id) == []


async def test_reminders_run_only_while_a_human_is_awaited_at_the_disable_gate_or_logins_off(
    engine: Engine,
) -> None:
    job = await engine.create()
    await engine.drain()
    await engine.tick(engine.settings.PPS_REMINDER_SECONDS)  # disable gate: logins on
    at_gate = await engine.events(job.id, EventKind.REMINDER)
    assert len(at_gate) == 1 and "approval to disable all user logins" in at_gate[0].data["text"]
    job = await to_enable_gate_of(engine, job)
    assert len(await engine.events(job.id, EventKind.REMINDER)) == 1  # none between the gates
    # Logins are off and a human is awaited: reminders, and the escalation armed.
    assert sorted(await engine.timer_names(job.id)) == ["escalate", "reminder"]
    await engine.tick(engine.settings.PPS_REMINDER_SECONDS)
    await engine.tick(engine.settings.PPS_REMINDER_SECONDS)
    reminders = (await engine.events(job.id, EventKind.REMINDER))[1:]
    assert len(reminders) == 2
    assert reminders[0].data["since"] == job.logins_disabled_at
    assert "disabled since" in reminders[0].data["text"]
    await engine.service.approve(job.id, await engine.gate(job.id), APPROVER)
    done = await engine.run_until(job.id, lambda j: j.terminal)
    assert done.state is State.SUCCEEDED
    await engine.tick(engine.settings.PPS_REMINDER_SECONDS * 3)
    assert len(await engine.events(job.id, EventKind.REMINDER)) == 3
    assert await engine.timer_names(job.id) == []


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
    assert await engine.timer_names(job.id) == ["poll"]
    due = await engine.timers.due(waiting.wake_timer)
    assert due == pytest.approx(engine.clock.now() + engine.settings.PPS_POLL_SECONDS)
    progress = await engine.events(job.id, EventKind.PROGRESS)
    assert [p.data for p in progress] == [{"step": "watch_reboot", "text": "node rebooted"}]
    await engine.tick(engine.settings.PPS_POLL_SECONDS - 1)  # not yet due
    assert stubs.runs.count(Step.WATCH_REBOOT) == 1
    await engine.tick(1)
    assert stubs.runs.count(Step.WATCH_REBOOT) == 2
    job = await engine.run_until(job.id, lambda j: j.step is Step.SETTLE)
    assert await engine.timer_names(job.id) == ["settle"]


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
