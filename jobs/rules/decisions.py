"""Human decisions on a job: approve, reject, confirm, abort (DESIGN §1, §4.3, §4.5).

Pure functions: each validates against the job as read, raises a `jobs.rules.errors.EngineError`
when it refuses (nothing changes), or mutates the job and returns the `Change` that
jobs/service.py commits atomically, compared on (state, step, gates) so a concurrent
decision on the same gate makes the later one see the gate as decided. Delivery guarantee:
a decision takes effect exactly once; the work it enqueues is delivered at least once and
the worker's fencing keeps appliance side effects at most once.
"""

from __future__ import annotations

from jobs.config.settings import Settings
from jobs.procedures import OnAbort, procedure_for
from jobs.rules.change import Change
from jobs.rules.errors import AbortRefused, JobFinished, StaleGate, TwoPersonRule, WrongGateKind
from jobs.rules.model import Decision, Gate, GateKind, Job, State, StepStatus
from jobs.rules.transitions import decide, finish, mark_step, offer_enable, set_state, sync_timers

DECISION_FIELDS = ("state", "step", "gates")  # what a decision's commit compares


def current_gate(job: Job, gate_id: str, kind: GateKind) -> Gate:
    """The open gate `gate_id` of `kind`, or the refusal that explains why not."""
    gate = job.gate(gate_id)
    if gate is not None and gate.decision is not None:
        raise StaleGate(job.id, gate_id, gate.decided_by, gate.decision.value)
    if job.settled:
        raise JobFinished(job.id, job.state.value)
    open_ = job.open_gate()
    if gate is None or open_ is None or open_.id != gate_id:
        raise StaleGate(job.id, gate_id)
    if gate.kind is not kind:
        raise WrongGateKind(job.id, gate_id)
    return gate


def _resume_state(job: Job) -> State:
    # A failed job re-enabling logins stays `failed`; everything else goes back to the queue.
    return State.FAILED if job.state is State.FAILED else State.QUEUED


def approve(job: Job, gate_id: str, user: str, now: float, settings: Settings) -> Change:
    """Approve the open approval gate; the two-person rule refuses the requester."""
    gate = current_gate(job, gate_id, GateKind.APPROVAL)
    if settings.PPS_TWO_PERSON_RULE and user == job.requester:
        raise TwoPersonRule(job.id)
    change = Change()
    decide(job, change, gate, Decision.APPROVED, user, now)
    procedure = procedure_for(job)
    if gate.step in procedure and procedure.spec(gate.step).gate:
        mark_step(job, gate.step, StepStatus.DONE, now, f"approved by <@{user}>")
        nxt = procedure.next(gate.step)
        assert nxt is not None  # a table refuses a gate as its last step
        job.step = nxt
    job.held_reason = ""
    set_state(job, change, _resume_state(job), f"approved by <@{user}>")
    change.enqueue(job.id)
    sync_timers(job, change, now, settings)
    return change


def reject(job: Job, gate_id: str, user: str, now: float, settings: Settings) -> Change:
    """Reject: before logins are off the job is cancelled; after, it is held at the enable gate."""
    gate = current_gate(job, gate_id, GateKind.APPROVAL)
    change = Change()
    decide(job, change, gate, Decision.REJECTED, user, now)
    if not job.logins_disabled:
        mark_step(job, gate.step, StepStatus.FAILED, now, f"rejected by <@{user}>")
        finish(job, change, State.CANCELLED, now, f"rejected by <@{user}>")
    else:
        # Logins stay off: the job must not end. Hold it and offer a fresh enable request.
        mark_step(job, gate.step, StepStatus.WAITING, now, f"rejected by <@{user}>")
        job.held_reason = f"enable request rejected by <@{user}>; user logins stay disabled"
        state = State.FAILED if job.state is State.FAILED else State.HELD
        evidence = job.outputs.evidence_of(gate.id)
        offer_enable(job, change, now, state, job.held_reason, evidence)
    sync_timers(job, change, now, settings)
    return change


def confirm(job: Job, gate_id: str, user: str, now: float, settings: Settings) -> Change:
    """Confirm an operator-assisted step was done; the worker then re-runs it to verify."""
    gate = current_gate(job, gate_id, GateKind.CONFIRM)
    if settings.PPS_TWO_PERSON_RULE and user == job.requester:
        raise TwoPersonRule(job.id)
    change = Change()
    decide(job, change, gate, Decision.CONFIRMED, user, now)
    set_state(job, change, _resume_state(job), f"confirmed by <@{user}>")
    change.enqueue(job.id)
    sync_timers(job, change, now, settings)
    return change


def _refusal(job: Job, rule: OnAbort) -> str:
    if rule is OnAbort.REFUSE_FIRMWARE:
        node = job.acting_node or "the acting node"
        return (
            f"firmware install has started on {node}; the cluster must finish rebooting; "
            "approve the enable gate when it is offered"
        )
    if rule is OnAbort.REFUSE_ENABLING:
        return f"user logins are being re-enabled on {job.cluster}; the job ends right after"
    who = job.outputs.aborted_by
    already = f"already aborted by <@{who}>; " if who else ""
    return f"{already}user logins are disabled on {job.cluster}; approve the enable gate"


def _close_open_gate(job: Job, change: Change, user: str, now: float) -> None:
    gate = job.open_gate()
    if gate is not None:
        decide(job, change, gate, Decision.ABORTED, user, now)


def abort(job: Job, user: str, now: float, settings: Settings) -> Change:
    """Abort as the procedure's table says for the current step (DESIGN §1: clean cancel
    before logins are touched, enable gate between disable and install, refused from the
    install on)."""
    if job.settled:
        raise JobFinished(job.id, job.state.value)
    if job.terminal:
        raise AbortRefused(job.id, f"the job {job.state.value} and {_logins_hint(job)}")
    step = job.step
    rec = job.step_record(step)
    rule = procedure_for(job).spec(step).on_abort
    if rule is OnAbort.ENABLE_GATE_UNTIL_STARTED:
        # A step not yet started (queued) is still "between 5 and 6": the worker's fenced
        # start commit cannot succeed once the step has moved on.
        pending = job.state is State.QUEUED and rec.status is StepStatus.PENDING
        rule = OnAbort.ENABLE_GATE if pending else OnAbort.REFUSE_FIRMWARE
    change = Change()
    change.record(user, "abort", step=step.value, state=job.state.value)
    if rule is OnAbort.CANCEL:
        _close_open_gate(job, change, user, now)
        job.outputs.aborted_by = user
        mark_step(job, step, StepStatus.SKIPPED, now, f"aborted by <@{user}>")
        finish(job, change, State.CANCELLED, now, f"aborted by <@{user}>")
    elif rule is OnAbort.ENABLE_GATE:
        _close_open_gate(job, change, user, now)
        if not job.logins_disabled and rec.status is not StepStatus.PENDING:
            # The disable step started: it may have gone through. Assume it did.
            job.logins_disabled = True
            job.logins_disabled_at = now
        job.outputs.aborted_by = user
        mark_step(job, step, StepStatus.SKIPPED, now, f"aborted by <@{user}>")
        offer_enable(job, change, now, State.AWAITING_APPROVAL, f"aborted by <@{user}>")
    else:
        raise AbortRefused(job.id, _refusal(job, rule))
    sync_timers(job, change, now, settings)
    return change


def _logins_hint(job: Job) -> str:
    return f"user logins are still disabled on {job.cluster}; approve the enable gate"
