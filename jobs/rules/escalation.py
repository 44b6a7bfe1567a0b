"""Escalation: user logins have been off for PPS_ESCALATE_AFTER_SECONDS while a human is
awaited, so on-call is called, once per job.

A durable timer (kind `escalate`, due when logins went off + the delay) is armed whenever
the job waits on a human with logins off; when it fires and the job still waits, the
ESCALATED event goes to the notifier (a message in PPS_ESCALATION_CHANNEL mentioning
PPS_ONCALL) and, with PPS_ESCALATION_WEBHOOK, a `page` timer asks a worker to send the
PagerDuty Events API v2 `trigger`. When logins are back on, ESCALATION_RESOLVED and a
`resolve` page follow. `job.outputs.escalated_at`, committed under the job's fence, makes
the escalation happen at most once. Pure functions.
"""

from __future__ import annotations

import time
from typing import Any

from jobs.config.settings import Settings
from jobs.rules import timer_names as timers
from jobs.rules.change import Change
from jobs.rules.events import EventKind
from jobs.rules.model import GateKind, Job
from jobs.steps.plan import fmt_duration

TRIGGER = "trigger"
RESOLVE = "resolve"
_TOKEN = "logins-off"  # one escalation timer per job


def escalate_member(job_id: str) -> str:
    """The durable timer that escalates the job."""
    return timers.member(job_id, timers.ESCALATE, _TOKEN)


def page_member(job_id: str, action: str, attempt: int = 1) -> str:
    """The durable timer of one attempt at the webhook (`trigger` or `resolve`)."""
    return timers.member(job_id, timers.PAGE, f"{action}:{attempt}")


def parse_page_token(token: str) -> tuple[str, int]:
    """`trigger:2` -> ("trigger", 2); anything malformed reads as attempt 1."""
    action, _, attempt = token.partition(":")
    try:
        return action, max(1, int(attempt))
    except ValueError:
        return action, 1


def waiting_with_logins_off(job: Job) -> bool:
    """Logins are off and a human decision is awaited (the reminders' condition)."""
    return job.needs_reminder and job.logins_disabled_at is not None


def deadline(job: Job, settings: Settings) -> float | None:
    """When the job escalates if it still waits, or None (logins on, or never off)."""
    if job.logins_disabled_at is None or not job.logins_disabled:
        return None
    return job.logins_disabled_at + settings.PPS_ESCALATE_AFTER_SECONDS


def arm(job: Job, change: Change, settings: Settings) -> None:
    """Arm the escalation timer while the job waits on a human with logins off (idempotent:
    the same member, due at the same time); disarm it when it no longer waits."""
    if job.outputs.escalated_at is not None:
        return
    due = deadline(job, settings)
    if due is not None and waiting_with_logins_off(job):
        change.add_timer(escalate_member(job.id), due)
    elif job.logins_disabled_at is not None:
        change.remove_timer(escalate_member(job.id))


def _hhmm(epoch: float) -> str:
    return time.strftime("%H:%M UTC", time.gmtime(epoch))


def _todo(job: Job) -> str:
    gate = job.open_gate()
    if gate is not None and gate.kind is GateKind.CONFIRM:
        return "an operator step waits to be confirmed"
    return "the request to enable them waits for an approver"


def escalate(job: Job, now: float, settings: Settings) -> Change | None:
    """The escalation timer fired: call on-call if the job still waits with logins off.

    None when there is nothing to do (already escalated, logins back on, nobody awaited);
    a change that only re-arms the timer when it fired early.
    """
    due = deadline(job, settings)
    if job.outputs.escalated_at is not None or due is None or not waiting_with_logins_off(job):
        return None
    change = Change()
    if now < due:
        change.add_timer(escalate_member(job.id), due)
        return change
    since = job.logins_disabled_at if job.logins_disabled_at is not None else now
    channel = settings.PPS_ESCALATION_CHANNEL or job.channel
    job.outputs.escalated_at = now
    change.event(
        EventKind.ESCALATED,
        channel=channel,
        oncall=settings.oncall,
        since=since,
        text=f"User logins on {job.cluster} have been disabled since {_hhmm(since)} "
        f"({fmt_duration(now - since)}) and {_todo(job)} (job `{job.id}`, "
        f"{job.procedure} to {job.target}).",
    )
    change.record("engine", "escalated", channel=channel, oncall=settings.oncall,
                  after_seconds=round(now - since, 3))
    if settings.PPS_ESCALATION_WEBHOOK:
        change.add_timer(page_member(job.id, TRIGGER), now)
    return change


def resolve(job: Job, change: Change, now: float, settings: Settings) -> None:
    """Logins are back on: close the escalation, if there was one (called by the rules when
    the enable step succeeds)."""
    change.remove_timer(escalate_member(job.id))
    if job.outputs.escalated_at is None or job.outputs.escalation_resolved_at is not None:
        return
    job.outputs.escalation_resolved_at = now
    since = job.logins_disabled_at if job.logins_disabled_at is not None else now
    change.event(
        EventKind.ESCALATION_RESOLVED,
        channel=settings.PPS_ESCALATION_CHANNEL or job.channel,
        since=since,
        text=f"User logins on {job.cluster} are enabled again since {_hhmm(now)}; they "
        f"were off for {fmt_duration(now - since)} (job `{job.id}`).",
    )
    change.record("engine", "escalation_resolved")
    if settings.PPS_ESCALATION_WEBHOOK:
        change.add_timer(page_member(job.id, RESOLVE), now)


def page_body(job: Job, action: str, settings: Settings, now: float) -> dict[str, Any]:
    """The PagerDuty Events API v2 body for `action`; `dedup_key` is the job id. Holds the
    routing key when one is set: never log it."""
    body: dict[str, Any] = {"event_action": action, "dedup_key": job.id}
    key = settings.PPS_ESCALATION_ROUTING_KEY.get_secret_value()
    if key:
        body["routing_key"] = key
    if action != TRIGGER:
        return body
    since = job.logins_disabled_at if job.logins_disabled_at is not None else now
    body["client"] = "pps-chatops"
    body["payload"] = {
        "summary": f"User logins disabled on {job.cluster} for {fmt_duration(now - since)} "
        f"(job {job.id}, {job.procedure} to {job.target}); a human decision is awaited",
        "source": job.cluster,
        "severity": "critical",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "component": "user-logins",
        "group": job.cluster,
        "class": "logins_disabled",
        "custom_details": {
            "job_id": job.id,
            "cluster": job.cluster,
            "procedure": job.procedure,
            "target": job.target,
            "state": job.state.value,
            "step": job.step.value,
            "logins_disabled_since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since)),
            "requester": job.requester,
        },
    }
    return body
