"""Escalation messages: on-call called because user logins have been off too long while a
human is awaited, the note in the card's thread, and the all-clear when logins are back.

Data comes from the ESCALATED / ESCALATION_RESOLVED events (`jobs.rules.escalation`).
"""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import Block

from bot.render.common import engine_text, outside
from bot.render.limits import Message, context, message, section
from bot.render.thread import mentions
from jobs.rules.model import Job


def _card_ref(job: Job) -> str:
    return f"job `{job.id}` (card in <#{job.channel}>)" if job.channel.startswith("C") \
        else f"job `{job.id}`"


def escalation_message(job: Job, data: dict[str, Any]) -> Message:
    """The call to on-call, posted in the escalation channel (mentions PPS_ONCALL)."""
    who = mentions([str(i) for i in data.get("oncall") or []])
    lines = [
        f"📟 *Escalation: user logins are still disabled on {outside(job.cluster)}*",
        engine_text(str(data.get("text", "")), job),
        f"To re-enable them, an approver approves the *enable all user logins* request in "
        f"the thread of {_card_ref(job)}; see the README section on held jobs.",
    ]
    blocks: list[Block] = [section("\n".join(lines))]
    if who:
        blocks.append(section(f"On call: {who}"))
    blocks.append(context(f"Escalated once per job · `{job.id}` · {outside(job.cluster)}"))
    text = f"Escalation: user logins still disabled on {job.cluster} ({job.id})"
    return message(text, blocks)


def escalation_note(job: Job, channel: str) -> Message:
    """The note in the card's thread when the escalation went to another channel."""
    line = f"📟 Escalated to on-call in <#{channel}>: user logins have been off too long."
    return message(f"Escalated to on-call ({job.id})", [section(line)])


def resolved_message(job: Job, data: dict[str, Any]) -> Message:
    """The all-clear, in the escalation's thread: logins are enabled again."""
    line = f"✅ *Resolved:* {engine_text(str(data.get('text', '')), job)}"
    return message(f"Resolved: user logins enabled again on {job.cluster} ({job.id})",
                   [section(line)])
