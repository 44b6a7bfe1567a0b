"""Redis comes back EMPTY (restarted without persistence, or flushed): the consumer groups
are gone. Workers and the notifier must recreate their groups by themselves and go on
working (a new job runs to the end and gets its card), never crash-looping on NOGROUP.

The last test loses the data while the notifier is between posting the old job's gate
message and its bookkeeping, and a new job is created at once: it gets a new id (ids carry
their creation time and a random part, so they never repeat after a data loss), and the
old post's bookkeeping must not land on the new job (it would mark the new job's gate event
as already posted: no buttons, the job stuck).

Prints `redis-data-loss ...` lines with the time until a new job could run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from jobs.rules.model import Job, State, Step
from jobs.service import UpgradeRequest
from tests.engine.engine_support import REQUESTER
from tests.resilience.resilience_support import Rig, is_gate

StartRig = Callable[..., Awaitable[Rig]]


async def _run_new_job(r: Rig, lost: str) -> None:
    job = await r.create("east")
    await _run_existing_job(r, job.id, lost)


async def _run_existing_job(r: Rig, job_id: str, lost: str) -> None:
    t0 = time.monotonic()
    job = await r.job(job_id)
    done = await r.until(job.id, lambda j: j.terminal, within=20, approve="shown")
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
    """A first job waits at its disable gate, shown in Slack; the notifier is idle (the
    loss in the middle of a post is the last test's)."""
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


@pytest.mark.slow
async def test_resilience_data_loss_mid_post_does_not_leak_into_a_new_job(rig: StartRig) -> None:
    r = await rig(workers=2, slack=True)
    assert r.slack is not None
    created: list[str] = []

    async def after_post(args: dict[str, Any]) -> None:
        if is_gate(args) and not created:
            await r.redis.flushdb()  # the old job is gone; its notifier work is not done
            job, _ = await r.service.create_job(UpgradeRequest("east", REQUESTER, "C1"))
            created.append(job.id)

    r.slack.client.after_post = after_post
    first = await r.create("solo")
    deadline = time.monotonic() + 15
    while not created:  # the first job (and its id) are gone once the gate is posted
        assert time.monotonic() < deadline, f"{first.id}'s gate was never posted"
        await asyncio.sleep(0.02)
    assert len(created) == 1 and created != [first.id], "a job id repeated after a data loss"
    await _run_existing_job(r, created[0], "mid-post")
