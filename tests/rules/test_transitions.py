"""`jobs.rules.transitions`: what each step result does to a job, its events, timers and
lock (advance, poll, ask, fail), dry runs, and the logins-disabled reminders."""

from __future__ import annotations

import pytest

from jobs.procedures import UPGRADE
from jobs.rules.events import EventKind
from jobs.rules.model import GateKind, State, Step, StepStatus
from jobs.rules.outputs import PreflightOut, VerifyOut
from jobs.steps.base import Advance, AskApproval, AskOperator, Fail, Poll
from tests.rules.rules_support import APPROVER, REMINDER_SECONDS, Flow

BEFORE_RISK = [Step.PREFLIGHT, Step.BACKUP, Step.RECORD, Step.GATE_DISABLE]


@pytest.mark.parametrize("step", [s for s in UPGRADE.steps if s is not Step.VERIFY])
def test_advance_goes_to_the_next_step_and_queues_it(step: Step) -> None:
    f = Flow().to(step)
    f.start()
    f.later(12)
    out = PreflightOut(acting_node="east-b")
    change = f.result(Advance(outputs=out, detail="fine"))
    job = f.job
    assert job.step is UPGRADE.next(step) and job.state is State.QUEUED
    assert job.step_record(step).status is StepStatus.DONE
    assert job.step_record(step).detail == "fine" and job.step_record(step).duration == 12
    assert job.outputs.acting_node == "east-b" and job.acting_node == "east-b"
    assert job.attempts == 0
    assert change.events[0] == (
        EventKind.STEP_DONE, {"step": step.value, "detail": "fine", "duration": 12}
    )  # fmt: skip
    assert change.work == [{"job_id": job.id, "kind": "step", "token": ""}]
    assert f.locked and not job.terminal


def test_start_announces_a_step_once_and_counts_attempts() -> None:
    f = Flow().to(Step.BACKUP)
    first = f.start()
    assert [k for k, _ in first.events] == [EventKind.STEP_STARTED]
    assert f.job.state is State.RUNNING and f.job.attempts == 1
    again = f.start()  # re-entered after a crash: no second announcement
    assert again.events == [] and f.job.attempts == 2


def test_the_last_step_succeeds_settles_and_releases_the_cluster() -> None:
    f = Flow().to(Step.VERIFY)
    assert not f.job.logins_disabled and f.job.logins_disabled_at is not None
    f.start()
    change = f.result(Advance(outputs=VerifyOut(builds_after={"n": "9.1R18"})))
    job = f.job
    assert job.state is State.SUCCEEDED and job.settled and job.finished_at == f.clock.now()
    assert change.work == [] and not f.locked
    [finished] = f.events(EventKind.FINISHED)
    assert finished.data["state"] == "succeeded"
    assert finished.data["summary"]["builds_after"] == {"n": "9.1R18"}
    assert finished.data["summary"]["logins_disabled_seconds"] > 0


def test_poll_parks_the_job_on_one_timer_and_replaces_it() -> None:
    f = Flow().to(Step.WATCH_REBOOT)
    f.start()
    first = f.result(Poll(10, progress="east-a stopped answering"))
    assert f.job.state is State.WAITING and f.job.wake_at == f.clock.now() + 10
    assert f.timer_kinds().get("poll") == pytest.approx(f.clock.now() + 10)
    assert (EventKind.PROGRESS, {"step": "watch_reboot", "text": "east-a stopped answering"}) in (
        first.events
    )
    assert EventKind.STATE in [k for k, _ in first.events]
    f.later(10)
    second = f.step(Poll(7.5))  # waiting: the runner does not start the step again
    assert f.job.attempts == 1 and second.events == []  # no new state, no progress line
    polls = [m for m in f.store.timers_of(f.job_id) if "|poll|" in m]
    assert polls == [f.job.wake_timer] and f.job.wake_at == f.clock.now() + 7.5
    f.later(8)
    f.step(Advance())
    assert f.job.wake_timer == "" and f.job.wake_at is None and "poll" not in f.timer_kinds()


def test_settle_polls_on_a_settle_timer() -> None:
    f = Flow().to(Step.SETTLE)
    f.step(Poll(300))
    assert set(f.timer_kinds()) == {"settle"} and f.job.state is State.WAITING


def test_ask_approval_opens_one_gate_and_waits_for_a_human() -> None:
    f = Flow().to(Step.GATE_DISABLE)
    change = f.step(AskApproval(evidence={"sessions": 412}))
    gate = f.job.open_gate()
    assert gate is not None and gate.kind is GateKind.APPROVAL and gate.step is Step.GATE_DISABLE
    assert f.job.state is State.AWAITING_APPROVAL
    assert dict(change.events)[EventKind.GATE_OPENED] == {
        "gate_id": gate.id, "gate_kind": "approval", "step": "gate_disable",
        "evidence": {"sessions": 412},
    }  # fmt: skip
    assert change.work == [] and f.timer_kinds() == {}  # logins are on: no reminder


def test_ask_operator_opens_a_confirm_gate_with_the_instructions() -> None:
    f = Flow().to(Step.INSTALL)
    change = f.step(AskOperator("click Install Now", "unsupported", saw="no reboot"))
    gate = f.job.open_gate()
    assert gate is not None and gate.kind is GateKind.CONFIRM and gate.step is Step.INSTALL
    assert f.job.manual == {"install": "unsupported"}
    assert dict(change.events)[EventKind.MANUAL] == {
        "gate_id": gate.id, "step": "install", "instructions": "click Install Now",
        "reason": "unsupported", "saw": "no reboot",
    }  # fmt: skip
    assert EventKind.GATE_OPENED not in [k for k, _ in change.events]
    # Confirmed: the step runs again to verify, on the same step.
    f.confirm()
    assert f.job.step is Step.INSTALL and f.job.state is State.QUEUED


@pytest.mark.parametrize("step", BEFORE_RISK)
def test_fail_before_logins_are_at_risk_ends_the_job(step: Step) -> None:
    f = Flow().to(step)
    f.start()
    change = f.result(Fail("node unreachable"))
    job = f.job
    assert job.state is State.FAILED and job.settled and job.error == "node unreachable"
    assert job.step is step and job.step_record(step).status is StepStatus.FAILED
    kinds = [k for k, _ in change.events]
    assert EventKind.STEP_FAILED in kinds and EventKind.FINISHED in kinds
    assert EventKind.LOGINS_DISABLED_ALERT not in kinds and job.open_gate() is None
    assert not f.locked and f.timer_kinds() == {}


def test_the_steps_at_risk_are_those_from_the_disable_to_the_settle_wait() -> None:
    steps = UPGRADE.steps
    at_risk = {r.step for r in UPGRADE.rows if r.logins_at_risk}
    assert set(steps[steps.index(Step.DISABLE_LOGINS) : steps.index(Step.SETTLE) + 1]) == at_risk


def test_dry_run_ends_after_preflight_with_the_plan() -> None:
    f = Flow(dry_run=True)
    f.start()
    plan = {"steps": ["backup", "record"], "acting_node": "solo"}
    rows = [{"check": "auth", "ok": True}]
    change = f.result(Advance(outputs=PreflightOut(preflight=rows, plan=plan)))
    job = f.job
    assert job.state is State.SUCCEEDED and job.settled and job.step is Step.PREFLIGHT
    assert dict(change.events)[EventKind.PLAN] == {"preflight": rows, "plan": plan}
    [finished] = f.events(EventKind.FINISHED)
    assert finished.data["state"] == "succeeded"
    [end] = [a for a in f.store.audit if a["action"] == "finished:succeeded"]
    assert end["detail"]["reason"] == "dry run: preflight passed, nothing changed"
    assert change.work == [] and not f.locked
    assert all(job.step_record(s).status is StepStatus.PENDING for s in UPGRADE.steps[1:])


def test_a_dry_run_that_fails_preflight_ends_failed() -> None:
    f = Flow(dry_run=True)
    f.step(Fail("target package missing"))
    assert f.job.state is State.FAILED and f.job.settled and not f.events(EventKind.PLAN)


# -- reminders while logins are disabled (DESIGN §4.12) -----------------------------------


def test_reminders_start_when_a_human_is_awaited_with_logins_off() -> None:
    f = Flow().to(Step.GATE_ENABLE)
    assert f.job.logins_disabled and "reminder" not in f.timer_kinds()  # nobody awaited yet
    f.step(AskApproval(evidence={}))
    assert f.timer_kinds()["reminder"] == pytest.approx(f.clock.now() + REMINDER_SECONDS)


def test_no_reminders_while_logins_are_on() -> None:
    f = Flow().to(Step.GATE_DISABLE)
    f.step(AskApproval(evidence={}))
    assert f.job.open_gate() is not None and "reminder" not in f.timer_kinds()


def test_a_reminder_says_since_when_and_what_to_do_then_rearms() -> None:
    f = Flow().to(Step.GATE_ENABLE)
    since = f.job.logins_disabled_at
    assert since is not None
    f.step(AskApproval(evidence={}))
    f.later(REMINDER_SECONDS)
    f.remind()
    [rem] = f.events(EventKind.REMINDER)
    minutes = int((f.clock.now() - since) // 60)
    assert rem.data["since"] == since
    assert "User logins on c1 have been disabled since" in rem.data["text"]
    assert f"({minutes} min); approve the enable request" in rem.data["text"]
    assert f.timer_kinds()["reminder"] == pytest.approx(f.clock.now() + REMINDER_SECONDS)


def test_a_reminder_at_an_operator_step_asks_for_the_confirm() -> None:
    f = Flow().to(Step.ENABLE_LOGINS)
    f.step(AskOperator("click Enable All Users", "unsupported"))
    f.later(REMINDER_SECONDS)
    f.remind()
    assert "confirm the operator step" in f.events(EventKind.REMINDER)[0].data["text"]


def test_reminders_stop_once_the_human_answered_and_logins_are_back() -> None:
    f = Flow().to(Step.GATE_ENABLE)
    f.step(AskApproval(evidence={}))
    assert "reminder" in f.timer_kinds()
    change = f.approve(APPROVER)
    assert f.job.reminder_timer == "" and "reminder" not in f.timer_kinds()
    assert change.zrem  # the reminder timer is removed in the decision's own commit
    f.step(Advance())  # logins enabled
    assert not f.job.logins_disabled and "reminder" not in f.timer_kinds()


def test_a_late_reminder_after_they_stopped_posts_nothing() -> None:
    f = Flow().to(Step.GATE_ENABLE)
    f.step(AskApproval(evidence={}))
    f.approve()
    change = f.remind()  # a timer already in flight when the gate was approved
    assert change.events == [] and change.zadd == {} and f.job.reminder_timer == ""
