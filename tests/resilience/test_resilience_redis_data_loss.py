"""Redis comes back EMPTY (restarted without persistence, or flushed): the consumer groups
are gone. Workers and the notifier must recreate their groups by themselves and go on
working (a new job runs to the end and gets its card), never crash-looping on NOGROUP.

The data loss happens once the notifier has shown the first job's gate (it is idle): job
ids restart at J-0001 after a data loss, and a notifier caught in the middle of a post for
the old J-0001 writes its bookkeeping into the new J-0001's (a known hazard, see the report).

Prints `redis-data-loss ...` lines with the time until a new job could run.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import pytest
from resilience_support import Rig

from jobs.model import Job, State, Step

StartRig = Callable[..., Awaitable[Rig]]


async def _run_new_job(r: Rig, lost: str) -> None:
    t0 = time.monotonic()
    job = await r.create("east")
    done = await r.until(job.id, lambda j: j.terminal, within=30, approve="shown")
    took = time.monotonic() - t0
    assert r.slack is not None
    card = r.slack.card_state(done)
    effects = r.effects("east")
    print(
        f"redis-data-loss how={lost:<8} new_job={job.id} final={done.state.value} "
        f"took={took:.1f}s card={card} disable={effects[0]} install={effects[1]} "
        f"enable={effects[2]} crashes={r.crashes()} worker_groups={await r.worker_groups_ok()} "
        f"notifier_group={await r.notifier_groups_ok()}"
    )
    assert done.state is State.SUCCEEDED, done.error
    assert effects == (1, 1, 1)
    await r.until(job.id, lambda j: r.slack is not None and r.slack.card_state(j) == (
        "succeeded"), within=10, approve="no")
    assert r.crashes() == 0, [x for x in r.log.lines if "crash" in x[1]]
    assert r.workers_running() and not r.slack.task.done()


async def _first_job_shown(r: Rig) -> None:
    """A first job waits at its disable gate, shown in Slack; the notifier is idle."""
    first = await r.create("solo")

    def shown(j: Job) -> bool:
        gate = j.open_gate()
        return gate is not None and gate.step is Step.GATE_DISABLE and bool(gate.message_ts)

    await r.until(first.id, shown, within=15, approve="no")
    await r.notifier_drained()


@pytest.mark.slow
async def test_resilience_restart_without_persistence(rig: StartRig) -> None:
    r = await rig(workers=2, persist=False, slack=True)
    await _first_job_shown(r)
    await r.server.restart(down_for=0.3)
    assert not await r.redis.exists(r.keys.job("J-0001"))
    await _run_new_job(r, "restart")


@pytest.mark.slow
async def test_resilience_groups_lost_under_a_live_connection(rig: StartRig) -> None:
    r = await rig(workers=2, slack=True)
    await _first_job_shown(r)
    # Same server, connections intact: the next XREADGROUP answers NOGROUP.
    await r.redis.flushdb()
    await _run_new_job(r, "flushdb")
