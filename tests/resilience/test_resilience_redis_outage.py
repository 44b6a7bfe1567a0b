"""Redis goes away while a worker is in the middle of a step.

- killed right after the appliance accepted a side effect and kept down longer than the
  client's socket timeout: the step's commit fails, the worker waits Redis out, and the
  step is re-run after Redis returns, finding the side effect done (never sent twice);
- frozen (SIGSTOP) while a commit is in flight: the client times out and retries, and on
  SIGCONT Redis runs the timed-out copy AND the retry; the job must not be left stranded.

Prints `redis-outage ...` lines with side-effect counts and recovery times.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from jobs.procedures import UPGRADE
from jobs.rules.change import Change
from jobs.rules.model import Job, State, Step
from jobs.steps.base import StepContext, StepFn, StepResult
from jobs.store import job_store as store_mod
from jobs.store.job_store import Snapshot
from tests.fakes import Recorder
from tests.resilience.resilience_support import SOCKET_TIMEOUT, Rig

StartRig = Callable[..., Awaitable[Rig]]
ORDER = list(UPGRADE.steps)
EFFECT_STEPS = {"disable": Step.DISABLE_LOGINS, "install": Step.INSTALL,
                "enable": Step.ENABLE_LOGINS}


def _past(step: Step) -> Callable[[Job], bool]:
    return lambda j: j.terminal or ORDER.index(j.step) > ORDER.index(step)


def counting(runs: dict[Step, int]) -> dict[Step, StepFn]:
    """The real steps, counting how often each one is entered."""

    def wrap(step: Step, impl: StepFn) -> StepFn:
        async def run(ctx: StepContext) -> StepResult:
            runs[step] = runs.get(step, 0) + 1
            return await impl(ctx)

        return run

    return {s: wrap(s, impl) for s, impl in UPGRADE.impls.items()}


@pytest.mark.slow
async def test_resilience_redis_down_after_each_side_effect(rig: StartRig) -> None:
    runs: dict[Step, int] = {}
    r = await rig(workers=2, steps=counting(runs))
    down_for = 1.5 * SOCKET_TIMEOUT
    ups: list[float] = []
    restarts: list[asyncio.Task[None]] = []

    async def outage(what: str) -> None:
        r.server.kill()  # the side effect happened; the step has not committed yet

        async def back() -> None:
            await asyncio.sleep(down_for)
            await r.server.start()
            ups.append(time.monotonic())

        restarts.append(asyncio.create_task(back()))

    r.on_write = outage
    job = await r.create("east")
    recovered: list[float] = []
    for n, step in enumerate(EFFECT_STEPS.values()):
        await r.until(job.id, lambda _j: len(ups) > n, within=30)  # noqa: B023
        await r.until(job.id, _past(step), within=30)
        recovered.append(time.monotonic() - ups[n])
    done = await r.until(job.id, lambda j: j.terminal, within=30)
    effects = r.effects("east")
    reruns = [runs.get(s, 0) for s in EFFECT_STEPS.values()]
    print(
        f"redis-outage after-side-effect down={down_for:.1f}s final={done.state.value} "
        f"disable={effects[0]} install={effects[1]} enable={effects[2]} "
        f"step_runs(disable,install,enable)={reruns} "
        f"recovered={[round(x, 2) for x in recovered]}s crashes={r.crashes()} "
        f"outage_logs={r.log.count('unreachable')}"
    )
    assert done.state is State.SUCCEEDED, done.error
    assert effects == (1, 1, 1)
    assert all(n >= 2 for n in reruns), "each step's first commit should have failed"
    assert r.workers_running() and r.crashes() == 0, r.log.lines
    assert r.server.starts == 4


@pytest.mark.slow
async def test_resilience_frozen_redis_replays_a_commit(
    rig: StartRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = await rig(workers=1)
    store = r.workers[0].runner.store
    real_commit = store.commit
    frozen: list[float] = []

    async def freezing_commit(snap: Snapshot, new: Job, change: Change, **kw: Any) -> bool:
        starting = snap.job.state is State.QUEUED and new.state is State.RUNNING
        if starting and new.step is Step.INSTALL and not frozen:
            # Freeze with the start commit in flight; thaw while the client's first retry
            # waits: Redis then runs the timed-out copy and the retry, in that order.
            r.server.freeze()
            frozen.append(time.monotonic())
            asyncio.get_running_loop().call_later(1.5 * SOCKET_TIMEOUT, r.server.thaw)
        return await real_commit(snap, new, change, **kw)

    monkeypatch.setattr(store, "commit", freezing_commit)
    store_log = Recorder()
    monkeypatch.setattr(store_mod, "log", store_log)
    job = await r.create("east")
    done = await r.until(job.id, lambda j: j.terminal, within=25)
    effects = r.effects("east")
    print(
        f"redis-outage frozen-commit final={done.state.value} disable={effects[0]} "
        f"install={effects[1]} enable={effects[2]} crashes={r.crashes()} "
        f"replayed_commits={store_log.count('re-sent')}"
    )
    assert frozen, "the freeze never happened"
    assert store_log.count("re-sent") >= 1, "the retry did not meet the applied commit"
    assert done.state is State.SUCCEEDED, done.error
    assert effects == (1, 1, 1)
