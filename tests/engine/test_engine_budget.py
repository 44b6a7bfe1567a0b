"""A hung appliance call (issue 9.4): every step attempt has a time budget, a hung attempt
never holds a job past the reboot deadline, and reminders of other jobs keep coming while
a step hangs (one worker, real short time)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import redis.asyncio as aioredis

from jobs.config.clock import SystemClock
from jobs.config.inventory import Inventory
from jobs.config.settings import Settings
from jobs.rules.events import EventKind
from jobs.rules.model import GateKind, Job, State, Step
from jobs.rules.outputs import InstallOut
from jobs.service import JobService, UpgradeRequest
from jobs.steps.base import Advance, Fail, Poll, StepContext, StepFn, StepResult
from jobs.store.keys import Keys
from jobs.store.wiring import redis_service
from jobs.worker.budget import attempt_budget, over_budget
from jobs.worker.process import Worker
from tests.engine.engine_support import REQUESTER, Stubs, approve_until
from tests.fakes import WORKER_TIMINGS, make_settings


def test_budget_adds_transfers_and_stops_at_the_reboot_deadline(settings: Settings) -> None:
    s = settings.model_copy(
        update={"PPS_STEP_TIMEOUT_SECONDS": 300.0, "PPS_TRANSFER_TIMEOUT_SECONDS": 900.0}
    )
    job = Job(id="J-1", cluster="solo", target="9.1R18", requester="U")
    now = 1_000_000.0
    assert attempt_budget(job, s, now) == 300.0  # preflight: reads only
    job.step = Step.BACKUP
    assert attempt_budget(job, s, now) == 300.0 + 2 * 900.0  # two exports
    job.step = Step.INSTALL
    assert attempt_budget(job, s, now) == 300.0 + 900.0  # one upload, nothing sent yet
    job.outputs.install_sent_at = now - 1700  # 100 s left of the 1800 s deadline
    assert attempt_budget(job, s, now) == 100.0
    job.step = Step.WATCH_REBOOT
    job.outputs.install_accepted_at = now - 1799.5
    assert attempt_budget(job, s, now) == 1.0  # at the deadline: one last quick look
    assert attempt_budget(job, s, now + 3600) == 1.0


def test_a_cut_off_attempt_polls_before_the_deadline_and_fails_at_it(
    settings: Settings,
) -> None:
    job = Job(id="J-1", cluster="solo", target="9.1R18", requester="U", step=Step.RECORD)
    cut = over_budget(job, settings, 0.0, 300.0)
    assert isinstance(cut, Fail)
    assert cut.error.endswith("did not finish within 5 min: the appliance did not answer in time")
    job.step = Step.WATCH_REBOOT
    job.outputs.install_accepted_at = 10_000.0
    again = over_budget(job, settings, 10_000.0 + 60, 60.0)
    assert isinstance(again, Poll) and again.after == settings.PPS_POLL_SECONDS
    assert again.progress and "did not answer within 1 min" in again.progress
    late = over_budget(job, settings, 10_000.0 + settings.PPS_REBOOT_TIMEOUT_SECONDS, 60.0)
    assert isinstance(late, Fail) and "reboot deadline (30 min after the install)" in late.error


async def test_hung_watch_fails_at_the_reboot_deadline_with_logins_flagged(
    redis: aioredis.Redis, keys: Keys, prefix: str, tmp_path: Path, inventory: Inventory,
    stubs: Stubs,
) -> None:
    """Before: the heartbeat kept the lease, nobody took over, the deadline was never
    checked and the job sat in `running` with logins off for as long as the call hung."""
    settings = make_settings(tmp_path, prefix, timings=WORKER_TIMINGS).model_copy(
        update={"PPS_REBOOT_TIMEOUT_SECONDS": 1.0, "PPS_STEP_TIMEOUT_SECONDS": 60.0}
    )
    accepted: list[float] = []
    cancelled = asyncio.Event()

    async def install(ctx: StepContext) -> StepResult:
        accepted.append(time.time())
        return Advance(InstallOut(install_accepted_at=accepted[-1]), "accepted")

    async def hung_watch(ctx: StepContext) -> StepResult:
        try:
            await asyncio.Event().wait()  # an appliance call that never returns
        finally:
            cancelled.set()
        raise AssertionError("unreachable")

    steps: dict[Step, StepFn] = {
        **stubs.registry(), Step.INSTALL: install, Step.WATCH_REBOOT: hung_watch
    }
    worker = Worker(redis, settings, inventory, steps=steps, name="w", keys=keys)
    task = asyncio.create_task(worker.run())
    try:
        svc = redis_service(redis, settings, inventory, SystemClock(), keys)
        job, _ = await svc.create_job(UpgradeRequest("solo", REQUESTER, "C1"))
        failed = await approve_until(svc, job.id, lambda j: j.state is State.FAILED, 15)
        took = time.time() - accepted[0]
    finally:
        worker.stop()
        await asyncio.wait_for(task, 10)
    assert failed.state is State.FAILED, failed
    assert "reboot deadline" in failed.error, failed.error
    assert 1.0 <= took < 3.0, took  # the deadline, plus one poll at most
    assert cancelled.is_set()
    assert failed.logins_disabled
    gate = failed.open_gate()
    assert gate is not None and gate.step is Step.GATE_ENABLE
    kinds = [e.kind for e in await svc.store.events(job.id)]
    assert EventKind.LOGINS_DISABLED_ALERT in kinds  # the channel is told, loudly


async def test_reminders_keep_coming_while_another_jobs_step_hangs(
    redis: aioredis.Redis, keys: Keys, prefix: str, tmp_path: Path, inventory: Inventory,
    stubs: Stubs,
) -> None:
    """One worker; job A failed with logins off and waits at the enable gate (reminders
    every 0.3 s); job B's preflight hangs in an appliance call (budget 8 s). Before: A's
    reminders sat in the stream behind B's step, none was posted while it hung."""
    settings = make_settings(tmp_path, prefix, timings=WORKER_TIMINGS).model_copy(
        update={"PPS_REMINDER_SECONDS": 0.3, "PPS_STEP_TIMEOUT_SECONDS": 8.0}
    )
    hanging = asyncio.Event()
    stubs.fail_at[Step.WATCH_REBOOT] = "a node did not come back"  # A: logins stay off
    real = stubs.registry()

    async def preflight(ctx: StepContext) -> StepResult:
        if ctx.cluster.name == "mesh":
            hanging.set()
            await asyncio.Event().wait()  # never answers
        return await real[Step.PREFLIGHT](ctx)

    worker = Worker(
        redis, settings, inventory, steps={**real, Step.PREFLIGHT: preflight}, name="w",
        keys=keys,
    )
    task = asyncio.create_task(worker.run())
    svc = redis_service(redis, settings, inventory, SystemClock(), keys)
    try:
        a, _ = await svc.create_job(UpgradeRequest("solo", REQUESTER, "C1"))

        def at_enable_gate(j: Job) -> bool:
            gate = j.open_gate()
            return gate is not None and gate.step is Step.GATE_ENABLE

        held = await approve_until(svc, a.id, at_enable_gate, 15)
        assert held.logins_disabled and at_enable_gate(held)
        gate = held.open_gate()
        assert gate is not None and gate.kind is GateKind.APPROVAL
        b, _ = await svc.create_job(UpgradeRequest("mesh", REQUESTER, "C1"))
        await asyncio.wait_for(hanging.wait(), 5)
        before = await _reminders(svc, a.id)
        await asyncio.sleep(2.0)
        during = await _reminders(svc, a.id) - before
        still = await svc.get(b.id)
    finally:
        worker.stop()
        task.cancel()  # B's step never ends by itself within this test
        await asyncio.gather(task, return_exceptions=True)
    assert still.step is Step.PREFLIGHT and still.state is State.RUNNING  # B still hangs
    assert during >= 3, during  # about one every 0.3 s once the lane starts


async def _reminders(svc: JobService, job_id: str) -> int:
    return sum(e.kind is EventKind.REMINDER for e in await svc.store.events(job_id))
