"""Gates (ask with evidence, advance once approved), settle wait, final verification."""

from __future__ import annotations

from collections.abc import Callable

from jobs.rules.events import EventKind
from jobs.rules.model import Decision, GateKind, State, Step
from jobs.rules.timer_names import SETTLE
from jobs.steps.base import Advance, AskApproval, Fail, Poll
from tests.fakes.harness import TARGET_BUILD, Harness

MakeHarness = Callable[..., Harness]


async def test_disable_gate_asks_with_evidence_then_advances_once_approved(
    make_harness: MakeHarness,
) -> None:
    h = make_harness("active-passive", vip=True)
    h.job.outputs.acting_node = "east-a"
    ask = await h.run(Step.GATE_DISABLE)
    assert isinstance(ask, AskApproval)
    ev = ask.evidence
    assert ev["cluster"] == "c1" and ev["target"] == "9.1R18" and ev["acting_node"] == "east-a"
    assert ev["sessions"] == 412
    assert ev["downtime"] == "expect 20-30 min of downtime"
    assert "Odyssey Access Client" in ev["client_reminder"]
    assert any("412 active sessions will be cut" in line for line in ev["summary"])
    h.job.step = Step.GATE_DISABLE
    h.apply(ask)
    gate = h.job.open_gate()
    assert gate is not None and gate.kind is GateKind.APPROVAL
    assert h.job.state is State.AWAITING_APPROVAL
    # The approval moves the job on; the step, if it ran again, sees who approved.
    h.decide_open(Decision.APPROVED, "UBOSS")
    assert h.job.step is Step.DISABLE_LOGINS and h.job.state is State.QUEUED
    done = await h.run(Step.GATE_DISABLE)
    assert isinstance(done, Advance) and "UBOSS" in done.detail
    assert h.fake.calls == []


async def test_disable_gate_rejected_cancels_and_the_step_only_asks_again(
    make_harness: MakeHarness,
) -> None:
    h = make_harness("standalone")
    h.job.step = Step.GATE_DISABLE
    h.apply(await h.run())
    h.decide_open(Decision.REJECTED, "UBOSS")
    # Nothing changed on the appliance: the job ends cancelled and lets go of the cluster.
    assert h.job.state is State.CANCELLED and h.job.settled
    assert h.store.locks == {}
    assert [e.data["state"] for e in h.events(EventKind.FINISHED)] == ["cancelled"]
    # Rejected (or aborted) is not approval: asking again is all the step may do.
    assert isinstance(await h.run(Step.GATE_DISABLE), AskApproval)
    assert h.fake.calls == []


async def test_enable_gate_evidence_has_builds_status_and_time_disabled(
    make_harness: MakeHarness,
) -> None:
    h = make_harness("active-active")
    h.job.logins_disabled_at = h.clock.now()
    h.clock.advance(42 * 60)
    h.fake.set_down("aa-3")
    ask = await h.run(Step.GATE_ENABLE)
    assert isinstance(ask, AskApproval)
    ev = ask.evidence
    assert ev["builds"]["aa-1"] == "9.1R17 (build 27583)"
    assert ev["builds"]["aa-3"].startswith("no answer")
    assert ev["members"]["aa-3"] == "Enabled, Unreachable"
    assert ev["logins_disabled_for"] == "42 min"
    assert "User logins disabled for 42 min." in ev["summary"]


async def test_settle_polls_for_the_remaining_time_then_advances(
    make_harness: MakeHarness,
) -> None:
    h = make_harness("standalone")
    h.job.step = Step.SETTLE
    h.job.outputs.rejoined_at = h.clock.now() - 100
    first = await h.run()
    assert isinstance(first, Poll)
    assert first.after == 200 and first.progress and "Waiting 3 min" in first.progress
    h.apply(first)
    assert h.job.step == Step.SETTLE and h.job.state is State.WAITING
    assert h.wake() == SETTLE and h.clock.now() == h.job.outputs.rejoined_at + 300
    done = await h.run()
    assert isinstance(done, Advance) and "5 min" in done.detail


async def test_settle_reentered_early_polls_again_without_a_new_progress_line(
    make_harness: MakeHarness,
) -> None:
    h = make_harness("standalone")
    h.job.step = Step.SETTLE
    h.job.outputs.rejoined_at = h.clock.now()
    h.apply(await h.run())
    h.wait()
    h.clock.advance(-250)  # the timer fired early (or a re-delivery)
    again = await h.run()
    assert isinstance(again, Poll) and again.after == 250 and again.progress is None


async def test_verify_names_which_node_runs_what(make_harness: MakeHarness) -> None:
    h = make_harness("active-active")
    result = await h.run(Step.VERIFY)
    assert isinstance(result, Fail)
    assert "aa-1 runs 9.1R17 (build 27583), not 9.1R18" in result.error
    assert "aa-3 runs" in result.error


async def test_verify_advances_with_summary_after_upgrade(make_harness: MakeHarness) -> None:
    h = make_harness("standalone")
    result = await h.drive()
    assert isinstance(result, Advance), result
    summary = h.job.outputs.summary
    assert summary["builds_after"] == {"solo": TARGET_BUILD}
    assert summary["logins_disabled_seconds"] and summary["logins_disabled_seconds"] > 0
    assert set(summary["durations"]) >= {"preflight", "watch_reboot", "settle"}
    assert summary["durations"]["settle"] >= 300
