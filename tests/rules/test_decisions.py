"""`jobs.rules.decisions`: approve, reject and confirm (DESIGN §1, §4.3, §4.5): rejects before
and after logins are off, the two-person rule, and clicks on stale or wrong gates."""

from __future__ import annotations

from typing import Any

import pytest

from jobs.rules.errors import JobFinished, StaleGate, TwoPersonRule, WrongGateKind
from jobs.rules.events import EventKind
from jobs.rules.model import Decision, GateKind, State, Step, StepStatus
from jobs.steps.base import Advance, AskApproval, AskOperator, Fail
from tests.rules.rules_support import APPROVER, OTHER, REQUESTER, Flow, make_settings, refused


def at_gate(step: Step, **job_kw: Any) -> Flow:
    f = Flow(**job_kw).to(step)
    f.step(AskApproval(evidence={"summary": [f"{step.value}?"]}))
    return f


# -- approve ------------------------------------------------------------------------------


def test_approving_a_gate_records_who_and_moves_past_it() -> None:
    f = at_gate(Step.GATE_DISABLE)
    gate_id = f.gate_id()
    change = f.approve(APPROVER)
    job = f.job
    assert job.step is Step.DISABLE_LOGINS and job.state is State.QUEUED
    assert job.step_record(Step.GATE_DISABLE).status is StepStatus.DONE
    gate = job.gate(gate_id)
    assert gate is not None and gate.decision is Decision.APPROVED and gate.decided_by == APPROVER
    assert job.approvals[-1]["user"] == APPROVER and job.approvals[-1]["decision"] == "approved"
    assert dict(change.events)[EventKind.GATE_DECIDED]["user"] == APPROVER
    assert change.work == [{"job_id": job.id, "kind": "step", "token": ""}]
    assert f.store.audit[-1]["actor"] == APPROVER and f.store.audit[-1]["action"] == "approved"


def test_the_same_approver_may_decide_both_gates() -> None:
    f = at_gate(Step.GATE_DISABLE)
    f.approve(APPROVER)
    f.to(Step.GATE_ENABLE).step(AskApproval())
    f.approve(APPROVER)
    assert f.job.step is Step.ENABLE_LOGINS


# -- reject ---------------------------------------------------------------------------------


def test_reject_before_logins_are_off_cancels_before_anything_changed() -> None:
    f = at_gate(Step.GATE_DISABLE)
    change = f.reject(OTHER)
    job = f.job
    assert job.state is State.CANCELLED and job.settled and not job.logins_disabled
    assert job.step_record(Step.GATE_DISABLE).status is StepStatus.FAILED
    assert job.step_record(Step.DISABLE_LOGINS).status is StepStatus.PENDING
    kinds = [k for k, _ in change.events]
    assert EventKind.GATE_DECIDED in kinds and EventKind.FINISHED in kinds
    assert EventKind.LOGINS_DISABLED_ALERT not in kinds
    assert change.work == [] and not f.locked and f.timer_kinds() == {}


def test_the_requester_may_reject_their_own_job() -> None:
    f = at_gate(Step.GATE_DISABLE)
    f.reject(REQUESTER)
    assert f.job.state is State.CANCELLED


def test_reject_after_logins_are_off_holds_and_offers_a_fresh_enable_gate() -> None:
    f = at_gate(Step.GATE_ENABLE)
    first = f.gate_id()
    change = f.reject(OTHER)
    job = f.job
    assert job.state is State.HELD and not job.terminal and job.logins_disabled
    assert job.held_reason.startswith(f"enable request rejected by <@{OTHER}>")
    fresh = job.open_gate()
    assert fresh is not None and fresh.id != first and fresh.step is Step.GATE_ENABLE
    assert fresh.kind is GateKind.APPROVAL
    # The fresh request carries the evidence of the rejected one, and the alarm is raised.
    opened = dict(change.events)[EventKind.GATE_OPENED]
    assert opened["evidence"]["summary"] == ["gate_enable?"]
    assert EventKind.LOGINS_DISABLED_ALERT in [k for k, _ in change.events]
    assert EventKind.FINISHED not in [k for k, _ in change.events]
    assert f.locked and "reminder" in f.timer_kinds()
    # Someone approves later: logins are enabled and the hold is lifted.
    f.approve(APPROVER)
    assert f.job.step is Step.ENABLE_LOGINS and f.job.state is State.QUEUED
    assert f.job.held_reason == ""
    f.step(Advance())
    assert not f.job.logins_disabled and "reminder" not in f.timer_kinds()


def test_rejecting_the_enable_gate_of_a_failed_job_keeps_it_failed() -> None:
    f = Flow().to(Step.WATCH_REBOOT)
    f.step(Fail("east-b did not come back"))
    assert f.job.state is State.FAILED and f.job.step is Step.GATE_ENABLE
    f.reject(OTHER)
    assert f.job.state is State.FAILED and f.job.open_gate() is not None
    assert f.job.logins_disabled and f.locked


# -- the two-person rule ----------------------------------------------------------------------


@pytest.mark.parametrize("gate", [Step.GATE_DISABLE, Step.GATE_ENABLE])
def test_the_requester_may_not_approve(gate: Step) -> None:
    f = at_gate(gate)
    err = refused(f, lambda: f.approve(REQUESTER), TwoPersonRule)
    assert "requester" in err.message and f.job.id in err.message


def test_the_requester_may_not_confirm_an_operator_step() -> None:
    f = Flow().to(Step.INSTALL)
    f.step(AskOperator("click Install Now", "forced manual"))
    refused(f, lambda: f.confirm(REQUESTER), TwoPersonRule)
    f.confirm(OTHER)
    assert f.job.state is State.QUEUED and f.job.step is Step.INSTALL


def test_with_the_rule_off_the_requester_may_approve() -> None:
    f = at_gate(Step.GATE_DISABLE, settings=make_settings(PPS_TWO_PERSON_RULE=False))
    f.approve(REQUESTER)
    assert f.job.step is Step.DISABLE_LOGINS


# -- stale and wrong clicks -------------------------------------------------------------------


def test_a_second_click_on_a_decided_gate_names_the_decider() -> None:
    f = at_gate(Step.GATE_DISABLE)
    gate_id = f.gate_id()
    f.approve(APPROVER)
    err = refused(f, lambda: f.approve(OTHER, gate_id), StaleGate)
    assert err.message == f"Already decided by <@{APPROVER}> (approved)."
    refused(f, lambda: f.reject(OTHER, gate_id), StaleGate)


def test_a_click_on_the_rejected_request_after_a_fresh_one_was_posted_is_stale() -> None:
    f = at_gate(Step.GATE_ENABLE)
    old = f.gate_id()
    f.reject(OTHER)
    err = refused(f, lambda: f.approve(APPROVER, old), StaleGate)
    assert "rejected" in err.message
    f.approve(APPROVER)  # the fresh one works
    assert f.job.step is Step.ENABLE_LOGINS


def test_an_unknown_gate_is_no_longer_current() -> None:
    f = at_gate(Step.GATE_DISABLE)
    err = refused(f, lambda: f.approve(APPROVER, "G99-abcdef"), StaleGate)
    assert err.message == "That request for job `J-0001` is no longer current."


def test_a_button_of_the_other_kind_does_not_apply() -> None:
    f = at_gate(Step.GATE_DISABLE)
    refused(f, lambda: f.confirm(APPROVER), WrongGateKind)
    g = Flow().to(Step.INSTALL)
    g.step(AskOperator("click Install Now", "unsupported"))
    refused(g, lambda: g.approve(APPROVER), WrongGateKind)
    refused(g, lambda: g.reject(APPROVER), WrongGateKind)


def test_decisions_on_a_finished_job_are_refused() -> None:
    f = at_gate(Step.GATE_DISABLE)
    gate_id = f.gate_id()
    f.abort(REQUESTER)  # closes the gate as aborted and cancels
    assert f.job.settled
    err = refused(f, lambda: f.approve(APPROVER, gate_id), StaleGate)
    assert "(aborted)" in err.message
    refused(f, lambda: f.approve(APPROVER, "G02-000000"), JobFinished)
