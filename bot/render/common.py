"""Words and icons shared by the renderers: states, step statuses, metadata, job lines."""

from __future__ import annotations

import time
from typing import Any

from bot.render.limits import escape_keep_mentions
from jobs.procedures import UPGRADE, procedure_for
from jobs.rules.model import Job, State, Step, StepStatus

METADATA_EVENT_TYPE = "pps_job"

STATE_WORDS: dict[State, str] = {
    State.SCHEDULED: "🗓️ scheduled",
    State.QUEUED: "⏳ queued",
    State.RUNNING: "🔄 running",
    State.AWAITING_APPROVAL: "✋ awaiting approval",
    State.WAITING: "⏳ waiting",
    State.HELD: "⛔ held",
    State.SUCCEEDED: "✅ succeeded",
    State.FAILED: "❌ failed",
    State.CANCELLED: "🚫 cancelled",
}

STEP_ICONS: dict[StepStatus, str] = {
    StepStatus.PENDING: "▫️",
    StepStatus.RUNNING: "🔄",
    StepStatus.WAITING: "⏳",
    StepStatus.DONE: "✅",
    StepStatus.FAILED: "❌",
    StepStatus.SKIPPED: "⏭️",
}


def state_word(state: State) -> str:
    return STATE_WORDS[state]


def step_label(job: Job, step: Step | str) -> str:
    """`6/11 Install firmware` (numbered in the job's procedure)."""
    procedure, s = procedure_for(job), Step(step)
    return f"{procedure.index(s)}/{len(procedure.steps)} {procedure.title_of(s)}"


def card_metadata(job: Job) -> dict[str, Any]:
    """The message metadata every post and update of a job's card carries (DESIGN §3)."""
    return {
        "event_type": METADATA_EVENT_TYPE,
        "event_payload": {
            "job_id": job.id,
            "cluster": job.cluster,
            "state": job.state.value,
            "step": job.step.value,
        },
    }


def engine_text(text: str) -> str:
    """Text from the engine or an appliance: escaped, mentions kept."""
    return escape_keep_mentions(text)


def procedure_word(job: Job) -> str:
    """How messages name a job's procedure: "" for an upgrade (the wording they assume), else
    its title ("rollback")."""
    procedure = procedure_for(job)
    return "" if procedure.name == UPGRADE.name else procedure.title


def target_text(job: Job) -> str:
    """Where the job goes: its target, or (a rollback before its preflight) the words."""
    return job.target or "the rollback build"


def job_line(job: Job) -> str:
    """One line per job for lists: id, cluster, target, state, step, requester."""
    where = "" if job.terminal else f" at {step_label(job, job.step)}"
    when = ""
    if job.state is State.SCHEDULED and job.scheduled_at:
        when = f", starts {fmt_when(job.scheduled_at)}"
    dry = " (dry run)" if job.dry_run else ""
    kind = f" {other}" if (other := procedure_word(job)) else ""
    return (f"`{job.id}` {job.cluster}{kind} → {target_text(job)}{dry}: "
            f"{state_word(job.state)}{where}"
            f"{when} · requested by <@{job.requester}>")


def fmt_when(epoch: float) -> str:
    """`2030-01-05 01:30 UTC`: a date and time for scheduled starts."""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch))

