"""A real Redis restart (SIGKILL, same port and folder, AOF `appendfsync always`) in the
middle of an upgrade: at an approval gate, in the reboot watch (poll timers), in the settle
wait (a durable timer) and at the enable gate. Two in-process workers keep running through
it (they are never restarted) and the job must finish with disable, install and enable
each sent exactly once.

Prints one line per run: `redis-restart point=... recovered=...s disable=N install=N ...`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import pytest
from resilience_support import Rig

from jobs.model import Job, State, Step

StartRig = Callable[..., Awaitable[Rig]]


def _at_gate(step: Step) -> Callable[[Job], bool]:
    def pred(job: Job) -> bool:
        gate = job.open_gate()
        return gate is not None and gate.step is step

    return pred


def _waiting_in(step: Step) -> Callable[[Job], bool]:
    return lambda job: job.step is step and job.state is State.WAITING


POINTS: dict[str, Callable[[Job], bool]] = {
    "disable_gate": _at_gate(Step.GATE_DISABLE),
    "reboot_watch": _waiting_in(Step.WATCH_REBOOT),
    "settle": _waiting_in(Step.SETTLE),
    "enable_gate": _at_gate(Step.GATE_ENABLE),
}


def _mark(job: Job) -> tuple[str, str, str]:
    return job.state.value, job.step.value, repr(job.updated_at)


@pytest.mark.slow
@pytest.mark.parametrize("point", list(POINTS))
async def test_resilience_restart_mid_job(rig: StartRig, point: str) -> None:
    r = await rig(workers=2)
    job = await r.create("east")
    at_point = await r.until(job.id, POINTS[point], within=20)
    timers_before = await r.timers(job.id)
    restart_took = await r.server.restart(down_for=0.3)
    t_up = time.monotonic()

    # What the job had committed is still there; the settle timer too, due as before.
    after = await r.job(job.id)
    assert (after.state, after.step) == (at_point.state, at_point.step)
    if point == "settle":
        assert at_point.wake_timer in timers_before
        assert (await r.timers(job.id)).get(at_point.wake_timer) == timers_before[
            at_point.wake_timer
        ], "the settle timer was lost or moved by the restart"

    # Recovery: the job moves on (gates approved by the test as soon as Redis answers).
    moved = await r.until(job.id, lambda j: _mark(j) != _mark(at_point), within=20)
    recovered = time.monotonic() - t_up
    done = await r.until(job.id, lambda j: j.terminal, within=30)
    effects = r.effects("east")
    print(
        f"redis-restart point={point:<12} restart={restart_took:.2f}s "
        f"recovered={recovered:.2f}s next={moved.step.value}/{moved.state.value} "
        f"final={done.state.value} disable={effects[0]} install={effects[1]} "
        f"enable={effects[2]} crashes={r.crashes()} outages={r.log.count('unreachable')}"
    )
    assert done.state is State.SUCCEEDED, done.error
    assert effects == (1, 1, 1)
    assert r.workers_running(), "a worker ended: it must wait Redis out, not die"
    assert await r.worker_groups_ok()
    assert r.crashes() == 0, r.log.lines
    assert r.server.starts == 2
