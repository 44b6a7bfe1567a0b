"""A real Redis restart (SIGKILL, same port and folder, AOF `appendfsync always`) at each of
four points of one upgrade: at the disable gate, in the reboot watch (poll timers), in the
settle wait (a durable timer) and at the enable gate. Two in-process workers keep running
through all four (they are never restarted) and the job must finish with disable, install
and enable each sent exactly once. (Restarts with the notifier: test_resilience_notifier_*.)

Prints one line per restart, `redis-restart point=... recovered=...s`, and the totals.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable

import pytest
from resilience_support import Rig

from jobs import lua
from jobs.model import Job, State, Step

StartRig = Callable[..., Awaitable[Rig]]
COMMIT_SHA = hashlib.sha1(lua.COMMIT.encode()).hexdigest()


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
async def test_resilience_restart_at_each_point_of_one_job(rig: StartRig) -> None:
    r = await rig(workers=2, PPS_SETTLE_SECONDS=1.0)  # the settle timer outlives a restart
    job = await r.create("east")
    lines = []
    for point, pred in POINTS.items():
        at_point = await r.until(job.id, pred, within=20)
        timers_before = await r.timers(job.id)
        restart_took = await r.server.restart(down_for=0.3)
        t_up = time.monotonic()

        # The restart emptied Redis' script cache: the workers' next EVALSHA gets NOSCRIPT
        # and redis-py's Script loads the script again (the job moving on below proves it).
        # At a gate no worker commits before the approval, so the cache is still empty here.
        if point.endswith("_gate"):
            assert await r.redis.script_exists(COMMIT_SHA) == [False], point

        # What the job had committed is still there; the settle timer too, due as before.
        after = await r.job(job.id)
        assert (after.state, after.step) == (at_point.state, at_point.step), point
        if point == "settle":
            assert at_point.wake_timer in timers_before
            assert (await r.timers(job.id)).get(at_point.wake_timer) == timers_before[
                at_point.wake_timer
            ], "the settle timer was lost or moved by the restart"

        # Recovery: the job moves on (gates approved by the test as soon as Redis answers).
        before = _mark(at_point)
        moved = await r.until(job.id, lambda j: _mark(j) != before, within=20)  # noqa: B023
        lines.append(
            f"redis-restart point={point:<12} restart={restart_took:.2f}s "
            f"recovered={time.monotonic() - t_up:.2f}s "
            f"next={moved.step.value}/{moved.state.value}"
        )
    done = await r.until(job.id, lambda j: j.terminal, within=30)
    effects = r.effects("east")
    lines.append(
        f"redis-restart restarts={r.server.starts - 1} final={done.state.value} "
        f"disable={effects[0]} install={effects[1]} enable={effects[2]} crashes={r.crashes()} "
        f"outage_logs={r.log.count('unreachable')}"
    )
    print("\n".join(lines))
    assert done.state is State.SUCCEEDED, done.error
    assert effects == (1, 1, 1)
    assert r.workers_running(), "a worker ended: it must wait Redis out, not die"
    assert await r.worker_groups_ok()
    assert r.crashes() == 0, r.log.lines
    assert r.server.starts == 1 + len(POINTS)
