"""Waiting at the disable gate (step 4): reminders, and the timeout that cancels the job.

While the request to disable user logins is open nothing has changed on the appliances,
yet the job holds the cluster. So the gate is reminded of every PPS_REMINDER_SECONDS
(mentioning the cluster's approvers) and, unanswered after PPS_GATE_TIMEOUT_SECONDS, the job
is cancelled (`jobs.rules.decisions.expire`). The timeout is a durable timer whose token is
the gate id. Pure functions.
"""

from __future__ import annotations

import time
from typing import Any

from jobs.config.settings import Settings
from jobs.rules import timer_names as timers
from jobs.rules.model import Gate, GateKind, Job, Step
from jobs.steps.plan import fmt_duration


def awaiting_disable_approval(job: Job) -> Gate | None:
    """The open request to disable logins (nothing changed yet), if the job waits on one."""
    gate = job.open_gate()
    if gate is None or gate.kind is not GateKind.APPROVAL or gate.step is not Step.GATE_DISABLE:
        return None
    return None if job.logins_disabled or job.terminal else gate


def reminders_wanted(job: Job) -> bool:
    """Logins are off while a human is awaited (DESIGN §4.12), or the disable gate waits."""
    return job.needs_reminder or awaiting_disable_approval(job) is not None


def gate_timeout_member(job_id: str, gate_id: str) -> str:
    """The durable timer that expires an unanswered disable gate (token = the gate id)."""
    return timers.member(job_id, timers.GATE_TIMEOUT, gate_id)


def gate_deadline(gate: Gate, settings: Settings) -> float:
    """When an unanswered disable gate cancels its job."""
    return gate.opened_at + settings.PPS_GATE_TIMEOUT_SECONDS


def _hhmm(epoch: float) -> str:
    return time.strftime("%H:%M UTC", time.gmtime(epoch))


def gate_reminder(job: Job, gate: Gate, now: float, settings: Settings) -> dict[str, Any]:
    """The REMINDER event data for a waiting disable gate: since when, until when."""
    return {
        "since": gate.opened_at,
        "gate_id": gate.id,
        "text": f"Job `{job.id}` ({job.cluster} → {job.target}) has waited since "
        f"{_hhmm(gate.opened_at)} ({fmt_duration(now - gate.opened_at)}) for approval to "
        f"disable all user logins. Unanswered, it is cancelled at "
        f"{_hhmm(gate_deadline(gate, settings))} with nothing changed.",
    }


def expiry_reason(settings: Settings) -> str:
    """Why an expired disable gate cancelled its job (the job's error and summary)."""
    waited = fmt_duration(settings.PPS_GATE_TIMEOUT_SECONDS)
    return (
        f"nobody answered the request to disable all user logins within {waited}; "
        "the job was cancelled and nothing was changed on the appliances"
    )
