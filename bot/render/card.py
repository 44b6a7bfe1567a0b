"""The status card: one message per job, posted once and edited in place.

The card is a pure function of the job record (no wall clock in it), so the notifier can
skip an update whose content did not change.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import Block

from bot.render.common import (
    STEP_ICONS,
    card_metadata,
    engine_text,
    fmt_when,
    outside,
    procedure_word,
    state_word,
    target_text,
)
from bot.render.limits import (
    Message,
    context,
    header,
    mention,
    message,
    section,
    sections_for_lines,
)
from jobs.procedures import procedure_for
from jobs.rules.model import Decision, Job, State, Step, StepStatus
from jobs.steps.plan import fmt_duration, fmt_time

DETAIL_CHARS = 160
_DECISION_ICONS = {
    Decision.APPROVED: "✅",
    Decision.CONFIRMED: "☑️",
    Decision.REJECTED: "🛑",
    Decision.ABORTED: "🚫",
}


def _step_line(job: Job, i: int, step: Step) -> str:
    rec = job.step_record(step)
    line = f"{STEP_ICONS[rec.status]} {i}. {procedure_for(job).title_of(step)}"
    if rec.duration is not None:
        line += f" — {fmt_duration(rec.duration)}"
    elif rec.status in (StepStatus.RUNNING, StepStatus.WAITING) and rec.started_at:
        line += f" — since {fmt_time(rec.started_at)}"
    if step.value in job.manual:
        line += " (operator-assisted)"
    if rec.detail:
        detail = engine_text(rec.detail, job)
        if len(detail) > DETAIL_CHARS:
            detail = detail[: DETAIL_CHARS - 1] + "…"
        line += f"\n      _{detail}_"
    return line


def node_builds(job: Job) -> dict[str, str]:
    """The newest known build of every node: after the upgrade if read, else before."""
    before = job.outputs.builds_before or {}
    after = job.outputs.builds_after or {}
    merged: dict[str, Any] = {**before, **after}
    return {str(k): str(v) for k, v in merged.items()}


def _approvals(job: Job) -> str:
    parts = []
    for a in job.approvals:
        try:
            icon = _DECISION_ICONS.get(Decision(str(a.get("decision"))), "•")
            title = procedure_for(job).title_of(Step(str(a.get("step"))))
        except ValueError:
            continue
        title = title.removeprefix("Approval: ")
        parts.append(f"{icon} {mention(str(a.get('user')))} {outside(str(a.get('decision')))} "
                     f"{title.lower()}")
    return " · ".join(parts)


def card(job: Job) -> Message:
    """Render the card for the job's current state (with its `pps_job` metadata)."""
    procedure = procedure_for(job)
    kind = procedure.title.capitalize()
    if job.dry_run:  # an upgrade's dry run keeps its short name
        other = procedure_word(job)
        kind = f"{other.capitalize()} dry run" if other else "Dry run"
    title = f"{job.cluster}: {kind.lower()} to {target_text(job)} — {state_word(job.state)}"
    blocks: list[Block] = [header(title)]
    intro = f"*{kind}* `{job.id}` · requested by {mention(job.requester)}"
    if job.created_at:
        intro += f" at {fmt_time(job.created_at)}"
    if job.state is State.SCHEDULED and job.scheduled_at:
        intro += f"\n🗓️ Starts at {fmt_when(job.scheduled_at)}"
    if job.dry_run:
        intro += "\nPreflight only: nothing changes on the appliances."
    blocks.append(section(intro))
    steps = procedure.steps[:1] if job.dry_run else procedure.steps
    blocks.extend(sections_for_lines([_step_line(job, i, s) for i, s in enumerate(steps, 1)]))
    if job.error:
        blocks.append(section(f"❌ *Error:* {outside(job.error)}"))
    if job.held_reason:
        blocks.append(section(f"⛔ *Held:* {engine_text(job.held_reason, job)}"))
    if job.logins_disabled:
        since = f" since {fmt_time(job.logins_disabled_at)}" if job.logins_disabled_at else ""
        blocks.append(section(f"🔒 *User logins are disabled*{since}."))
    approvals = _approvals(job)
    if approvals:
        blocks.append(context(f"*Approvals:* {approvals}"))
    builds = node_builds(job)
    if builds:
        nodes = " · ".join(f"{outside(n)} `{outside(b)}`" for n, b in builds.items())
        blocks.append(context(f"*Builds:* {nodes}"))
    if job.acting_node:
        blocks.append(context(f"Acting node: {outside(job.acting_node)}"))
    text = f"{outside(job.cluster)} {kind.lower()} {job.id} to {target_text(job)}: " \
        f"{job.state.value}"
    return message(text, blocks, metadata=card_metadata(job))
