"""The real `Runner` over the in-memory store runs the same procedure the harness drives:
the store Protocols are all it needs, and the harness follows the runner's lifecycle."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from jobs.rules.events import EventKind
from jobs.rules.model import Decision, State
from jobs.rules.timer_names import parse_member
from jobs.store.ports import WorkItem
from jobs.worker.step_runner import DONE, Runner
from tests.fakes.harness import Harness

MakeHarness = Callable[..., Harness]


async def run_with_the_runner(h: Harness, max_items: int = 2000) -> list[str]:
    """Deliver the store's work items and due timers to a real Runner until the job
    settles, approving each gate; returns the outcomes."""
    store = h.store
    runner = Runner(store, store, store, h.settings, h.inventory, h.clock, lambda _c: h.fake)
    store.work.append({"job_id": h.job.id, "kind": "step", "token": ""})  # the create's item
    outcomes: list[str] = []
    for n in range(max_items):
        job = await store.get(h.job.id)
        assert job is not None
        if job.settled:
            return outcomes
        if store.work:
            fields = store.work.pop(0)
            outcomes.append(await runner.handle(WorkItem.from_entry(str(n), fields)))
        elif job.open_gate() is not None:
            h.job = job
            h.decide_open(Decision.APPROVED)
        else:  # the timer tick: release the earliest timer once it is due
            m, due = min(store.timers_of(job.id).items(), key=lambda kv: kv[1])
            h.clock.advance(max(0.0, due - h.clock.now()))
            del store.timers[m]
            job_id, kind, token = parse_member(m)
            store.work.append({"job_id": job_id, "kind": kind, "token": token})
    raise AssertionError("the job did not settle")


def step_lines(h: Harness) -> list[tuple[str, str]]:
    kinds = (EventKind.STEP_STARTED, EventKind.STEP_DONE, EventKind.GATE_OPENED)
    return [(e.kind.value, str(e.data["step"])) for e in h.events() if e.kind in kinds]


@pytest.mark.parametrize("mode", ["standalone", "active-passive"])
async def test_runner_and_harness_take_the_same_steps(make_harness: MakeHarness, mode: str) -> None:
    by_runner = make_harness(mode, vip=mode == "active-passive")
    outcomes = await run_with_the_runner(by_runner)
    job = await by_runner.store.get(by_runner.job.id)
    assert job is not None and job.state is State.SUCCEEDED, job and job.error
    assert set(outcomes) == {DONE}
    assert by_runner.fake.count("install") == 1 and by_runner.fake.login_permission is True

    by_harness = make_harness(mode, vip=mode == "active-passive", job_kw={"id": "J-0002"})
    await by_harness.drive()
    assert by_harness.job.state is State.SUCCEEDED
    assert step_lines(by_runner) == step_lines(by_harness)
    assert by_runner.progress == by_harness.progress
