"""`/pps abort` at each step (the table of DESIGN §1): a clean cancel before logins are
touched, the enable gate between the disable and the install, refused from the install on."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from jobs.rules.errors import AbortRefused, JobFinished
from jobs.rules.events import EventKind
from jobs.rules.model import Decision, GateKind, State, Step, StepStatus
from jobs.rules.outputs import PreflightOut
from jobs.rules.timer_names import START, member
from jobs.steps.base import Advance, AskApproval, AskOperator, Poll
from tests.rules.rules_support import OTHER, REQUESTER, Flow, refused


def queued(step: Step) -> Callable[[], Flow]:
    return lambda: Flow().to(step)


def running(step: Step) -> Callable[[], Flow]:
    def make() -> Flow:
        f = Flow().to(step)
        f.start()
        return f

    return make


def waiting(step: Step) -> Callable[[], Flow]:
    def make() -> Flow:
        f = Flow().to(step)
        f.step(Poll(10))
        return f

    return make


def asking(step: Step) -> Callable[[], Flow]:
    def make() -> Flow:
        f = Flow().to(step)
        f.step(AskApproval(evidence={}))
        return f

    return make


def operator(step: Step) -> Callable[[], Flow]:
    def make() -> Flow:
        f = Flow().to(step)
        f.step(AskOperator("click Disable All Users", "unsupported"))
        return f

    return make


CANCEL, ENABLE_GATE, REFUSED = "cancel", "enable gate", "refused"
# (where the job is, outcome, logins flagged disabled after the abort)
TABLE: dict[str, tuple[Callable[[], Flow], str, bool]] = {
    "1 preflight queued": (queued(Step.PREFLIGHT), CANCEL, False),
    "1 preflight running": (running(Step.PREFLIGHT), CANCEL, False),
    "2 backup running": (running(Step.BACKUP), CANCEL, False),
    "3 record queued": (queued(Step.RECORD), CANCEL, False),
    "4 disable gate asked": (asking(Step.GATE_DISABLE), CANCEL, False),
    "5 disable queued": (queued(Step.DISABLE_LOGINS), ENABLE_GATE, False),
    "5 disable running": (running(Step.DISABLE_LOGINS), ENABLE_GATE, True),
    "5 disable by an operator": (operator(Step.DISABLE_LOGINS), ENABLE_GATE, True),
    "6 install queued": (queued(Step.INSTALL), ENABLE_GATE, True),
    "6 install running": (running(Step.INSTALL), REFUSED, True),
    "7 watch waiting": (waiting(Step.WATCH_REBOOT), REFUSED, True),
    "8 settle waiting": (waiting(Step.SETTLE), REFUSED, True),
    "9 enable gate asked": (asking(Step.GATE_ENABLE), REFUSED, True),
    "10 enable queued": (queued(Step.ENABLE_LOGINS), REFUSED, True),
    "11 verify running": (running(Step.VERIFY), CANCEL, False),
}


@pytest.mark.parametrize("where", list(TABLE))
def test_abort_table(where: str) -> None:
    make, outcome, logins_off = TABLE[where]
    f = make()
    step, was_open = f.job.step, f.job.open_gate()
    if outcome == REFUSED:
        err = refused(f, lambda: f.abort(OTHER), AbortRefused)
        assert f.job.logins_disabled is logins_off and f.locked
        assert err.reason  # says why and what to do instead
        return
    change = f.abort(OTHER)
    job = f.job
    assert job.outputs.aborted_by == OTHER and job.logins_disabled is logins_off
    assert [a["actor"] for a in f.store.audit if a["action"] == "abort"] == [OTHER]
    if was_open is not None:  # the open request is closed as aborted, not left clickable
        closed = job.gate(was_open.id)
        assert closed is not None and closed.decision is Decision.ABORTED
    kinds = [k for k, _ in change.events]
    if outcome == CANCEL:
        assert job.state is State.CANCELLED and job.settled and not f.locked
        assert job.step_record(step).status is StepStatus.SKIPPED
        assert EventKind.FINISHED in kinds and job.open_gate() is None
        assert f.timer_kinds() == {}
        return
    gate = job.open_gate()
    assert gate is not None and gate.step is Step.GATE_ENABLE and gate.kind is GateKind.APPROVAL
    assert job.step is Step.GATE_ENABLE and job.state is State.AWAITING_APPROVAL
    assert not job.terminal and f.locked and EventKind.FINISHED not in kinds
    # Logins (maybe) off: the alarm and the reminders; still on: neither.
    assert (EventKind.LOGINS_DISABLED_ALERT in kinds) is logins_off
    assert ("reminder" in f.timer_kinds()) is logins_off
    # Approving the enable gate re-enables logins and then the job ends cancelled.
    f.approve()
    f.step(Advance())
    assert f.job.state is State.CANCELLED and f.job.settled and not f.locked
    assert f.timer_kinds() == {}
    [finished] = f.events(EventKind.FINISHED)
    assert finished.data["summary"]["aborted_by"] == OTHER


def test_the_refusal_names_the_installing_node() -> None:
    f = running(Step.INSTALL)()
    f.step(Advance(outputs=PreflightOut(acting_node="east-a")))  # accepted: the watch begins
    err = refused(f, lambda: f.abort(OTHER), AbortRefused)
    assert err.reason == (
        "firmware install has started on east-a; the cluster must finish rebooting; "
        "approve the enable gate when it is offered"
    )


def test_abort_of_a_scheduled_job_cancels_and_drops_its_start_timer() -> None:
    f = Flow(state=State.SCHEDULED)
    start = member("J-0001", START, "t0")
    job = f.job
    job.wake_timer, job.wake_at = start, f.clock.now() + 3600
    f.store.put(job)
    f.store.timers[start] = round((f.clock.now() + 3600) * 1000)
    f.abort(REQUESTER)
    assert f.job.state is State.CANCELLED and f.job.settled and f.timer_kinds() == {}


def test_a_second_abort_after_the_enable_gate_was_offered_is_refused() -> None:
    f = running(Step.DISABLE_LOGINS)()
    f.abort(OTHER)
    err = refused(f, lambda: f.abort(REQUESTER), AbortRefused)
    assert err.reason.startswith(f"already aborted by <@{OTHER}>;")


def test_abort_of_a_finished_job_is_refused() -> None:
    f = queued(Step.PREFLIGHT)()
    f.abort(OTHER)
    refused(f, lambda: f.abort(OTHER), JobFinished)
