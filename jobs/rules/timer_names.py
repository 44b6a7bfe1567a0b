"""Names of the durable timers: their kinds and the zset member `job_id|kind|token`.

Pure; the Redis side (the `timers` zset and its release script) is jobs/store/timers.py.
"""

from __future__ import annotations

import secrets

POLL = "poll"
SETTLE = "settle"
REMINDER = "reminder"
START = "start"
RETRY = "retry"  # a work item put back because another worker held the lease
GATE_TIMEOUT = "gate_timeout"  # the disable gate went unanswered; token = the gate id
ESCALATE = "escalate"  # logins off too long while a human is awaited (jobs.rules.escalation)
PAGE = "page"  # one attempt at the escalation webhook; token = `<action>:<attempt>`
KINDS: frozenset[str] = frozenset(
    {POLL, SETTLE, REMINDER, START, RETRY, GATE_TIMEOUT, ESCALATE, PAGE}
)


def member(job_id: str, kind: str, token: str | None = None) -> str:
    """A timer member; a fresh random token unless one is given."""
    return f"{job_id}|{kind}|{token if token is not None else secrets.token_hex(4)}"


def parse_member(m: str) -> tuple[str, str, str]:
    """`job_id|kind|token` -> (job_id, kind, token)."""
    job_id, kind, token = m.split("|", 2)
    return job_id, kind, token
