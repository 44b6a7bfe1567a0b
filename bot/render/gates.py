"""Gate messages: approval requests (`pps_approve` / `pps_reject`), operator-assisted
instructions (`pps_confirm`), and their decided form (buttons gone, decider and time named).

One message per gate; the button value is opaque (`handlers.actions.encode_value`).
"""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    MarkdownTextObject,
    PlainTextObject,
)

from bot.render.common import engine_text, outside
from bot.render.limits import (
    Message,
    clip,
    context,
    mention,
    message,
    section,
    sections_for_lines,
)
from handlers.actions import ACTION_APPROVE, ACTION_CONFIRM, ACTION_REJECT, encode_value
from jobs.procedures import procedure_for
from jobs.rules.model import Decision, Gate, GateKind, Job, Step
from jobs.steps.plan import fmt_time

# Slack's confirm-dialog limits: title 100, text 300, button labels 30.
_CONFIRM_TEXT = 300

_QUESTIONS: dict[Step, str] = {
    Step.GATE_DISABLE: "Disable all user logins on {cluster} and install {target}?",
    Step.GATE_ENABLE: "Enable all user logins on {cluster} again?",
}
_APPROVE_CONFIRM: dict[Step, str] = {
    Step.GATE_DISABLE: "All user logins on {cluster} will be disabled and active sessions cut; "
    "then {target} is installed.",
    Step.GATE_ENABLE: "User logins on {cluster} will be enabled again.",
}
# A rollback asks the same, about going back instead of installing.
_ROLLBACK_QUESTIONS: dict[Step, str] = {
    Step.GATE_DISABLE: "Disable all user logins on {cluster} and roll back to {target}?",
}
_ROLLBACK_APPROVE_CONFIRM: dict[Step, str] = {
    Step.GATE_DISABLE: "All user logins on {cluster} will be disabled and active sessions "
    "cut; then {cluster} rolls back to {target}.",
}
_REJECT_CONFIRM: dict[Step, str] = {
    Step.GATE_DISABLE: "The job is cancelled. Nothing has changed on the appliances yet.",
    Step.GATE_ENABLE: "User logins stay DISABLED and the job is held, with reminders, "
    "until someone approves this request.",
}
_OUTCOMES: dict[Decision, str] = {
    Decision.APPROVED: "✅ *Approved*",
    Decision.REJECTED: "🛑 *Rejected*",
    Decision.CONFIRMED: "☑️ *Confirmed* (the bot verifies by reading the appliance)",
    Decision.ABORTED: "🚫 *Closed* (job aborted)",
    Decision.EXPIRED: "⌛ *Expired*: nobody answered in time, so the job was cancelled with "
    "nothing changed",
}


def _title(job: Job, step: Step) -> str:
    return procedure_for(job).title_of(step)


def _fmt(template: str, job: Job) -> str:
    return template.format(cluster=outside(job.cluster), target=outside(job.target))


def _question(job: Job, step: Step, default: str) -> str:
    own = _ROLLBACK_QUESTIONS if job.procedure == "rollback" else {}
    return own.get(step) or _QUESTIONS.get(step, default)


def _approve_text(job: Job, step: Step) -> str:
    own = _ROLLBACK_APPROVE_CONFIRM if job.procedure == "rollback" else {}
    return own.get(step) or _APPROVE_CONFIRM.get(step, "Go ahead.")


def _confirm(title: str, text: str, yes: str, danger: bool = False) -> ConfirmObject:
    return ConfirmObject(
        title=PlainTextObject(text=clip(title, 100)),
        text=MarkdownTextObject(text=clip(text, _CONFIRM_TEXT)),
        confirm=PlainTextObject(text=clip(yes, 30)),
        deny=PlainTextObject(text="Cancel"),
        style="danger" if danger else "primary",
    )


def _evidence_lines(job: Job, evidence: dict[str, Any]) -> list[str]:
    lines = [f"• {outside(str(x))}" for x in evidence.get("summary") or []]
    if evidence.get("reason"):
        lines.insert(0, f"*Why now:* {engine_text(str(evidence['reason']), job)}")
    return lines


def _gate_head(job: Job, step: Step, evidence: dict[str, Any], *, open_: bool) -> list[Block]:
    question = _fmt(_question(job, step, _title(job, step) + "?"), job)
    what = _title(job, step).removeprefix("Approval: ")
    lead = "✋ *Approval needed:*" if open_ else "*Approval requested:*"
    blocks: list[Block] = [section(f"{lead} {what}\n*{question}*")]
    blocks.extend(sections_for_lines(_evidence_lines(job, evidence)))
    blocks.append(context(f"Job `{job.id}` · requested by {mention(job.requester)}"))
    return blocks


def approval_request(job: Job, gate_id: str, step: Step, evidence: dict[str, Any]) -> Message:
    """The approval message with Approve / Reject buttons (both behind a confirm dialog)."""
    value = encode_value(job.id, gate_id)
    approve = ButtonElement(
        text="Approve", action_id=ACTION_APPROVE, value=value, style="primary",
        confirm=_confirm("Approve?", _fmt(_approve_text(job, step), job),
                         "Approve"),
    )
    reject = ButtonElement(
        text="Reject", action_id=ACTION_REJECT, value=value, style="danger",
        confirm=_confirm("Reject?", _REJECT_CONFIRM.get(step, "The request is refused."),
                         "Reject", danger=True),
    )
    blocks = _gate_head(job, step, evidence, open_=True)
    blocks.append(ActionsBlock(block_id=f"gate:{gate_id}", elements=[approve, reject]))
    question = _fmt(_question(job, step, _title(job, step)), job)
    return message(f"Approval needed for {job.id}: {question}", blocks)


def _decided_line(gate: Gate) -> str:
    outcome = _OUTCOMES.get(gate.decision, "*Decided*") if gate.decision else "*Decided*"
    who = f" by {mention(gate.decided_by)}" if gate.decided_by else ""
    when = f" at {fmt_time(gate.decided_at)}" if gate.decided_at else ""
    return f"{outcome}{who}{when}"


def approval_decided(job: Job, gate: Gate, evidence: dict[str, Any]) -> Message:
    """The approval message after the decision: no buttons; decider, outcome and time."""
    blocks = _gate_head(job, gate.step, evidence, open_=False)
    blocks.append(section(_decided_line(gate)))
    return message(f"{_title(job, gate.step)} for {job.id}: {gate.decision or 'decided'}",
                   blocks)


def _operator_head(job: Job, step: Step, data: dict[str, Any]) -> list[Block]:
    blocks: list[Block] = [
        section(f"🛠️ *Operator action needed* — {_title(job, step)} on *{outside(job.cluster)}*"),
    ]
    if data.get("reason"):
        blocks.append(section(f"*Why by hand:* {outside(str(data['reason']))}"))
    if data.get("saw"):
        blocks.append(section(f"*Last check saw:* {outside(str(data['saw']))}"))
    lines = str(data.get("instructions") or "").splitlines() or ["(no instructions)"]
    blocks.extend(sections_for_lines([outside(x) for x in lines]))
    blocks.append(context(f"Job `{job.id}` · requested by {mention(job.requester)} · the "
                          "requester or an approver confirms"))
    return blocks


def operator_request(job: Job, gate_id: str, step: Step, data: dict[str, Any]) -> Message:
    """Instructions for an operator-assisted step with a `pps_confirm` button."""
    button = ButtonElement(
        text="Done — verify", action_id=ACTION_CONFIRM, value=encode_value(job.id, gate_id),
        style="primary",
        confirm=_confirm("Done?", "Confirm you did this on the appliance. The bot then reads "
                         "the appliance to verify it.", "Done — verify"),
    )
    blocks = _operator_head(job, step, data)
    blocks.append(ActionsBlock(block_id=f"gate:{gate_id}", elements=[button]))
    return message(f"Operator action needed for {job.id}: {_title(job, step)}", blocks)


def operator_decided(job: Job, gate: Gate, data: dict[str, Any]) -> Message:
    """The operator message after the click: no button; who confirmed and when."""
    blocks = _operator_head(job, gate.step, data)
    blocks.append(section(_decided_line(gate)))
    return message(f"{_title(job, gate.step)} for {job.id}: {gate.decision or 'decided'}",
                   blocks)


def decided(job: Job, gate: Gate, data: dict[str, Any]) -> Message:
    """The decided form of whichever gate message `gate` had."""
    if gate.kind is GateKind.CONFIRM:
        return operator_decided(job, gate, data)
    return approval_decided(job, gate, data)


def gate_message(job: Job, gate: Gate, data: dict[str, Any]) -> Message:
    """A gate's message from its event data: buttons while open, the decision once decided."""
    approval = gate.kind is GateKind.APPROVAL
    shown = (data.get("evidence") or {}) if approval else data
    if gate.decision is not None:
        return decided(job, gate, shown)
    if approval:
        return approval_request(job, gate.id, gate.step, shown)
    return operator_request(job, gate.id, gate.step, data)
