"""Thread replies under a job's card: one per notable transition.

`thread_post(job, event)` says what to post for an event (and whether to broadcast it to
the channel), or None. `merged(posts)` is one reply for several plain ones (the notifier
sends it when a job's replies fall behind Slack's pace). Gate messages are rendered by
bot/render/gates.py, the summary and the dry-run plan by bot/render/summary.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.render.common import engine_text, outside, state_word, step_label
from bot.render.limits import (
    MAX_SECTION_TEXT,
    Message,
    group_mention,
    mention,
    message,
    section,
    sections_for_lines,
)
from bot.render.summary import dry_run_plan, final_summary
from jobs.rules.events import Event, EventKind
from jobs.rules.model import Decision, Job, State
from jobs.steps.plan import fmt_duration

_DECISION_WORDS: dict[str, str] = {
    Decision.APPROVED.value: "👍 {user} approved",
    Decision.REJECTED.value: "🛑 {user} rejected",
    Decision.CONFIRMED.value: "☑️ {user} confirmed",
    Decision.ABORTED.value: "🚫 {user} aborted the job at",
    Decision.EXPIRED.value: "⌛ No answer in time (job cancelled, nothing changed)",
}
_SLACK_ID = re.compile(r"^[UWS][A-Z0-9]{2,20}$")


@dataclass(frozen=True)
class ThreadPost:
    message: Message
    broadcast: bool = False
    line: str | None = None  # a plain one-line reply: its text (it can be merged)


def _text(line: str, broadcast: bool = False) -> ThreadPost:
    return ThreadPost(message(line, [section(line)]), broadcast, line)


MERGE_MAX = 20  # plain replies in one merged reply


def merged(posts: list[ThreadPost]) -> ThreadPost:
    """One reply carrying the lines of several plain, not broadcast, replies, in order."""
    lines = [p.line for p in posts if p.line is not None and not p.broadcast]
    if len(lines) != len(posts) or not lines:
        raise ValueError("only plain replies merge")
    # The fallback keeps every line too (a reader of the text alone misses none), within a
    # section's size: a merged reply is posted, never edited (chat.update trims at 4,000).
    text = "\n".join(lines)
    return ThreadPost(message(text, sections_for_lines(lines), fallback_limit=MAX_SECTION_TEXT),
                      False, None if len(lines) > 1 else lines[0])


def _state(job: Job, ev: Event) -> ThreadPost | None:
    to, frm = ev.data.get("to"), ev.data.get("from")
    reason = engine_text(str(ev.data.get("reason") or ""), job)
    if to == State.HELD.value:
        return _text(f"{state_word(State.HELD)}: {reason}", broadcast=True)
    if frm == State.SCHEDULED.value and to != State.CANCELLED.value:
        return _text("🗓️ Start time reached: the job is starting.")
    return None


def thread_post(job: Job, ev: Event) -> ThreadPost | None:
    """What to post in the card's thread for `ev` (gate events are handled elsewhere)."""
    d = ev.data
    step = d.get("step")
    match ev.kind:
        case EventKind.STEP_DONE if step:
            took = f" in {fmt_duration(float(d['duration']))}" if d.get("duration") else ""
            detail = f" — {engine_text(str(d['detail']), job)}" if d.get("detail") else ""
            return _text(f"✅ {step_label(job, step)}: done{took}{detail}")
        case EventKind.STEP_FAILED if step:
            error = outside(str(d.get("error", "")))
            return _text(f"❌ {step_label(job, step)} failed: {error}")
        case EventKind.PROGRESS:
            return _text(f"🔄 {outside(str(d.get('text', '')))}")
        case EventKind.STATE:
            return _state(job, ev)
        case EventKind.GATE_DECIDED if step:
            who = _DECISION_WORDS.get(str(d.get("decision")), "{user} decided")
            line = who.format(user=mention(str(d.get("user"))))
            return _text(f"{line}: {step_label(job, step)}")
        case EventKind.REMINDER:
            text = engine_text(str(d.get("text", "")), job)
            who = mentions(d.get("mention") or d.get("approvers"))
            return _text(f"⏰ {who}{text}", broadcast=True)
        case EventKind.LOGINS_DISABLED_ALERT:
            return ThreadPost(_logins_alert(job, str(d.get("text", ""))), broadcast=True)
        case EventKind.PLAN:
            return ThreadPost(dry_run_plan(job, d), broadcast=True)
        case EventKind.FINISHED:
            return ThreadPost(final_summary(job, d), broadcast=True)
    return None


MAX_MENTIONS = 20  # people named in one reminder; a larger list is counted, not named


def mentions(ids: object) -> str:
    """Mentions the engine asks for by id (`mention` in the event data): users and user
    groups, each checked for its shape; malformed ids are dropped. Past `MAX_MENTIONS` the
    rest is counted (a user group is the way to reach a large team)."""
    if not isinstance(ids, list):
        return ""
    marks = [group_mention(i) if i.startswith("S") else mention(i) for i in map(str, ids)]
    marks = [m for m in marks if m.startswith("<")]
    if len(marks) > MAX_MENTIONS:
        marks = [*marks[:MAX_MENTIONS], f"and {len(marks) - MAX_MENTIONS} more approvers"]
    return " ".join(marks) + " " if marks else ""


def _logins_alert(job: Job, text: str) -> Message:
    lines = [
        f"🚨 *User logins are still disabled on {outside(job.cluster)}* (job `{job.id}`).",
        engine_text(text, job),
        "To re-enable them, an approver approves the *enable all user logins* request in this "
        "thread. Reminders follow until logins are enabled.",
    ]
    return message(f"User logins are still disabled on {outside(job.cluster)} ({job.id})",
                   [section("\n".join(lines))])

