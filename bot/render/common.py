"""Words and icons shared by the renderers: states, step statuses, metadata, job lines, and
the two kinds of text a message quotes: `outside` strings (appliance answers, inventory
names, user input: always escaped, never a mention) and `engine_text` (the engine's words,
which may mention the people who acted on the job, mixed with outside strings)."""

from __future__ import annotations

import time
from typing import Any

from bot.render.limits import escape, escape_keep_mentions, mention
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


def outside(text: str) -> str:
    """An outside string (appliance, inventory, user input): escaped, so it can never
    mention, link or broadcast."""
    return escape(text)


def participants(job: Job) -> frozenset[str]:
    """Who acted on the job: the requester, deciders of its gates, who aborted it."""
    users = {job.requester, str(job.outputs.aborted_by or "")}
    users.update(str(a.get("user") or "") for a in job.approvals)
    users.update(str(g.get("decided_by") or "") for g in job.gates.values())
    return frozenset(u for u in users if u)


def engine_text(text: str, job: Job) -> str:
    """The engine's words about `job` (which may quote an appliance): escaped, keeping only
    mentions of the people who acted on the job (`approved by <@U…>`)."""
    return escape_keep_mentions(text, participants(job))


def procedure_word(job: Job) -> str:
    """How messages name a job's procedure: "" for an upgrade (the wording they assume), else
    its title ("rollback")."""
    procedure = procedure_for(job)
    return "" if procedure.name == UPGRADE.name else procedure.title


def target_text(job: Job) -> str:
    """Where the job goes: its target, or (a rollback before its preflight) the words."""
    return outside(job.target) if job.target else "the rollback build"


def job_line(job: Job) -> str:
    """One line per job for lists: id, cluster, target, state, step, requester."""
    where = "" if job.terminal else f" at {step_label(job, job.step)}"
    when = ""
    if job.state is State.SCHEDULED and job.scheduled_at:
        when = f", starts {fmt_when(job.scheduled_at)}"
    dry = " (dry run)" if job.dry_run else ""
    kind = f" {other}" if (other := procedure_word(job)) else ""
    return (f"`{job.id}` {outside(job.cluster)}{kind} → {target_text(job)}{dry}: "
            f"{state_word(job.state)}{where}{when} · requested by {mention(job.requester)}")


def fmt_when(epoch: float) -> str:
    """`2030-01-05 01:30 UTC`: a date and time for scheduled starts."""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch))

