"""How a job moves: pure functions from (job, what happened) to the job's new fields and a
`Change` (events, audit, timers, work items). No I/O here; jobs/worker/step_runner.py and
jobs/service.py commit the result with one fenced compare-and-set (jobs/store/job_store.py).

Delivery guarantee of the whole engine: work is delivered at least once; appliance side
effects happen at most once, because a commit is refused unless the job is still where the
step found it, and the steps check the appliance before they act.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from typing import Any

from jobs.config.settings import Settings
from jobs.procedures import Logins, procedure_for
from jobs.rules import escalation
from jobs.rules import timer_names as timers
from jobs.rules.change import Change
from jobs.rules.events import EventKind
from jobs.rules.gate_wait import (
    awaiting_disable_approval,
    gate_deadline,
    gate_reminder,
    gate_timeout_member,
    reminders_wanted,
)
from jobs.rules.model import (
    Decision,
    Gate,
    GateKind,
    Job,
    State,
    Step,
    StepStatus,
)
from jobs.steps.base import Advance, AskApproval, AskOperator, Fail, Poll, StepResult

_QUIET = frozenset({State.QUEUED, State.RUNNING})  # step events already tell these apart


def clone(job: Job) -> Job:
    """A deep copy to build the next version of a job on."""
    return copy.deepcopy(job)


def set_state(job: Job, change: Change, state: State, reason: str = "") -> None:
    """Change state; a STATE event unless it only flips between queued and running."""
    old = job.state
    if old == state:
        return
    job.state = state
    if not {old, state} <= _QUIET:
        change.event(EventKind.STATE, **{"from": old.value, "to": state.value, "reason": reason})


def mark_step(
    job: Job, step: Step, status: StepStatus, now: float, detail: str | None = None
) -> None:
    """Update a step's record: started on first touch, finished when done/failed/skipped."""
    rec = job.step_record(step)
    if rec.started_at is None:
        rec.started_at = now
    rec.status = status
    if status in (StepStatus.DONE, StepStatus.FAILED, StepStatus.SKIPPED):
        rec.finished_at = now
    if detail is not None:
        rec.detail = detail
    job.set_step_record(step, rec)


def open_gate(
    job: Job, change: Change, kind: GateKind, step: Step, now: float, evidence: dict[str, Any]
) -> Gate:
    """Open a gate (at most one is open at a time) and announce it."""
    gate = job.add_gate(kind, step, now)
    job.outputs.add_evidence(gate.id, evidence)
    if kind is GateKind.APPROVAL:
        change.event(
            EventKind.GATE_OPENED,
            gate_id=gate.id,
            gate_kind=kind.value,
            step=step.value,
            evidence=evidence,
        )
    return gate


def decide(job: Job, change: Change, gate: Gate, decision: Decision, user: str, now: float) -> None:
    """Record a human decision on a gate (also used to close a gate on abort)."""
    job.decide_gate(gate.id, decision, user, now)
    job.approvals.append(
        {
            "gate": gate.id,
            "step": gate.step.value,
            "decision": decision.value,
            "user": user,
            "at": now,
        }
    )
    change.event(
        EventKind.GATE_DECIDED,
        gate_id=gate.id,
        decision=decision.value,
        user=user,
        step=gate.step.value,
    )
    change.record(user, decision.value, gate=gate.id, step=gate.step.value, kind=gate.kind.value)
    if gate.step is Step.GATE_DISABLE:
        change.remove_timer(gate_timeout_member(job.id, gate.id))


def set_wake(job: Job, change: Change, kind: str, at: float) -> None:
    """Park the job on one durable timer (poll, settle or start), replacing the previous one."""
    change.remove_timer(job.wake_timer)
    job.wake_timer = timers.member(job.id, kind)
    job.wake_at = at
    change.add_timer(job.wake_timer, at)


def clear_wake(job: Job, change: Change) -> None:
    """The job is no longer parked on a timer (it runs, waits on a human, or ended)."""
    if job.wake_timer:
        change.remove_timer(job.wake_timer)
    job.wake_timer = ""
    job.wake_at = None


def sync_timers(job: Job, change: Change, now: float, settings: Settings) -> None:
    """Start reminders when they become due (DESIGN §4.12), stop them when not; arm the
    timeout of an open disable gate (idempotent: due when the gate opened + the timeout) and
    the escalation while logins are off (`jobs.rules.escalation`)."""
    wanted = reminders_wanted(job)
    if wanted and not job.reminder_timer:
        job.reminder_timer = timers.member(job.id, timers.REMINDER)
        change.add_timer(job.reminder_timer, now + settings.PPS_REMINDER_SECONDS)
    elif not wanted and job.reminder_timer:
        change.remove_timer(job.reminder_timer)
        job.reminder_timer = ""
    gate = awaiting_disable_approval(job)
    if gate is not None:
        change.add_timer(gate_timeout_member(job.id, gate.id), gate_deadline(gate, settings))
    escalation.arm(job, change, settings)


def summary(job: Job, now: float) -> dict[str, Any]:
    """The FINISHED summary: per-step durations, logins-off time, builds, backups, drift."""
    steps = procedure_for(job).steps
    durations = {
        s.value: round(d, 3) for s in steps if (d := job.step_record(s).duration) is not None
    }
    off: float | None = None
    if job.logins_disabled_at is not None:
        end = job.logins_enabled_at if job.logins_enabled_at is not None else now
        off = round(max(0.0, end - job.logins_disabled_at), 3)
    return {
        "durations": durations,
        "total_seconds": round(now - job.created_at, 3),
        "logins_disabled_seconds": off,
        "builds_before": job.outputs.builds_before,
        "builds_after": job.outputs.builds_after,
        "backups": job.outputs.backups,
        "error": job.error or None,
        "aborted_by": job.outputs.aborted_by,
        "drift": job.outputs.drift.model_dump(mode="json") if job.outputs.drift else None,
    }


def finish(job: Job, change: Change, state: State, now: float, reason: str) -> None:
    """End the job in `state`. The end is only final (settled) once logins are enabled."""
    clear_wake(job, change)
    set_state(job, change, state, reason)
    if not job.logins_disabled:
        job.finished_at = now
        change.event(EventKind.FINISHED, state=state.value, summary=summary(job, now))
        change.record("engine", f"finished:{state.value}", reason=reason)


def logins_text(job: Job) -> str:
    return (
        f"user logins are still disabled on {job.cluster}; "
        "approve the enable request to re-enable them"
    )


def offer_enable(
    job: Job,
    change: Change,
    now: float,
    state: State,
    why: str,
    evidence: dict[str, Any] | None = None,
) -> Gate:
    """Go to the enable gate and offer it: failure, abort or reject with logins (maybe) off."""
    clear_wake(job, change)
    job.step = procedure_for(job).enable_gate
    mark_step(job, job.step, StepStatus.WAITING, now)
    set_state(job, change, state, why)
    ev = dict(evidence or {})
    ev.setdefault("reason", why)
    gate = open_gate(job, change, GateKind.APPROVAL, job.step, now, ev)
    if job.logins_disabled:
        change.event(
            EventKind.LOGINS_DISABLED_ALERT, text=f"{why}: {logins_text(job)}.", reason=why
        )
    return gate


def fail(job: Job, change: Change, now: float, error: str) -> None:
    """A step failed: end the job, or, with logins (maybe) off, keep the enable gate offered."""
    spec = procedure_for(job).spec(job.step)
    job.error = error
    if job.logins_disabled or spec.logins_at_risk:
        if not job.logins_disabled:
            # The disable may have gone through before the failure: assume it did.
            job.logins_disabled = True
            job.logins_disabled_at = now
        offer_enable(job, change, now, State.FAILED, f"{spec.title} failed: {error}")
    else:
        finish(job, change, State.FAILED, now, error)


def start_step(job: Job, change: Change, now: float) -> None:
    """A worker begins (or re-enters after a crash) the job's current step."""
    first = job.step_record(job.step).status is StepStatus.PENDING
    clear_wake(job, change)
    mark_step(job, job.step, StepStatus.RUNNING, now)
    job.attempts += 1
    if first:
        change.event(EventKind.STEP_STARTED, step=job.step.value)
    if not job.terminal:  # a failed job re-enabling logins stays `failed`
        title = procedure_for(job).title_of(job.step)
        set_state(job, change, State.RUNNING, f"{title} started")


def _advance(job: Job, change: Change, result: Advance, now: float, settings: Settings) -> None:
    procedure = procedure_for(job)
    step = job.step
    spec = procedure.spec(step)
    rec = job.step_record(step)
    change.event(EventKind.STEP_DONE, step=step.value, detail=result.detail, duration=rec.duration)
    job.attempts = 0
    if spec.logins is Logins.DISABLED:
        job.logins_disabled = True
        job.logins_disabled_at = now
    elif spec.logins is Logins.ENABLED:
        job.logins_disabled = False
        job.logins_enabled_at = now
        escalation.resolve(job, change, now, settings)
    nxt = procedure.next(step)
    if spec.ends_dry_run and job.dry_run:
        plan = {"preflight": job.outputs.preflight, "plan": job.outputs.plan}
        change.event(EventKind.PLAN, **plan)
        finish(job, change, State.SUCCEEDED, now, "dry run: preflight passed, nothing changed")
    elif nxt is None:
        finish(job, change, State.SUCCEEDED, now, procedure.done)
    elif spec.logins is Logins.ENABLED and job.state is State.FAILED:
        finish(job, change, State.FAILED, now, "user logins re-enabled after the failure")
    elif spec.logins is Logins.ENABLED and job.outputs.aborted_by:
        who = job.outputs.aborted_by
        finish(job, change, State.CANCELLED, now, f"aborted by <@{who}>; user logins re-enabled")
    else:
        job.step = nxt
        set_state(job, change, State.QUEUED, f"{spec.title} done")
        change.enqueue(job.id)


def _ask(job: Job, change: Change, result: AskApproval | AskOperator, now: float) -> None:
    step = job.step
    if isinstance(result, AskApproval):
        open_gate(job, change, GateKind.APPROVAL, step, now, result.evidence)
    else:
        gate = open_gate(job, change, GateKind.CONFIRM, step, now, {"reason": result.reason})
        job.manual[step.value] = result.reason
        data: dict[str, Any] = {
            "gate_id": gate.id,
            "step": step.value,
            "instructions": result.instructions,
            "reason": result.reason,
        }
        if result.saw:
            data["saw"] = result.saw
        change.event(EventKind.MANUAL, **data)
    if job.state not in (State.HELD, State.FAILED):
        set_state(job, change, State.AWAITING_APPROVAL, procedure_for(job).title_of(step))


def apply_result(job: Job, result: StepResult, now: float, settings: Settings) -> Change:
    """Apply a step's result to `job` (mutated) and return what commits with it."""
    change = Change()
    step = job.step
    if result.outputs is not None:
        job.outputs.merge(result.outputs)
    if job.outputs.acting_node:
        job.acting_node = job.outputs.acting_node
    if job.outputs.target_build:  # a rollback: preflight found the build it goes back to
        job.target = job.outputs.target_build
    if not isinstance(result, Poll):
        clear_wake(job, change)
    if isinstance(result, Advance):
        mark_step(job, step, StepStatus.DONE, now, result.detail)
        _advance(job, change, result, now, settings)
    elif isinstance(result, Poll):
        mark_step(job, step, StepStatus.WAITING, now)
        spec = procedure_for(job).spec(step)
        set_wake(job, change, spec.wait, now + result.after)
        if not job.terminal:
            set_state(job, change, State.WAITING, spec.title)
        if result.progress:
            change.event(EventKind.PROGRESS, step=step.value, text=result.progress)
    elif isinstance(result, AskApproval | AskOperator):
        mark_step(job, step, StepStatus.WAITING, now)
        _ask(job, change, result, now)
    elif isinstance(result, Fail):
        mark_step(job, step, StepStatus.FAILED, now, result.error)
        change.event(EventKind.STEP_FAILED, step=step.value, error=result.error)
        fail(job, change, now, result.error)
    sync_timers(job, change, now, settings)
    return change


def remind(
    job: Job, change: Change, now: float, settings: Settings, approvers: Sequence[str] = ()
) -> bool:
    """Post the next reminder (mentioning `approvers`, user and group ids) while logins stay
    disabled or the disable gate waits; False when reminders should stop."""
    if not reminders_wanted(job):
        job.reminder_timer = ""
        return False
    waiting = awaiting_disable_approval(job)
    if waiting is not None:
        change.event(EventKind.REMINDER, **gate_reminder(job, waiting, now, settings),
                     approvers=list(approvers))
        job.reminder_timer = timers.member(job.id, timers.REMINDER)
        change.add_timer(job.reminder_timer, now + settings.PPS_REMINDER_SECONDS)
        return True
    since = job.logins_disabled_at if job.logins_disabled_at is not None else now
    gate = job.open_gate()
    todo = (
        "approve the enable request to re-enable them"
        if gate is None or gate.kind is GateKind.APPROVAL
        else "confirm the operator step when it is done"
    )
    minutes = int((now - since) // 60)
    stamp = time.strftime("%H:%M UTC", time.gmtime(since))
    change.event(
        EventKind.REMINDER,
        since=since,
        text=f"User logins on {job.cluster} have been disabled since {stamp} "
        f"({minutes} min); {todo}.",
        approvers=list(approvers),
    )
    job.reminder_timer = timers.member(job.id, timers.REMINDER)
    change.add_timer(job.reminder_timer, now + settings.PPS_REMINDER_SECONDS)
    return True
