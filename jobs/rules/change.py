"""`Change`: everything that commits atomically with a job write besides the job's own fields.

The rules build one (events for the notifier, audit entries, durable timer adds and removes,
work items); the store commits it with the job in one fenced script. Pure data, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jobs.config.clock import ms
from jobs.rules.events import EventKind


@dataclass
class Change:
    """Everything that commits atomically with a job write, besides the job's own fields."""

    events: list[tuple[EventKind, dict[str, Any]]] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)
    zadd: dict[str, int] = field(default_factory=dict)  # timer member -> due ms
    zrem: list[str] = field(default_factory=list)
    work: list[dict[str, str]] = field(default_factory=list)  # queue items

    def event(self, kind: EventKind, **data: Any) -> None:
        """Append a job event for the notifier."""
        self.events.append((kind, data))

    def record(self, actor: str, action: str, **detail: Any) -> None:
        """Append an audit entry: who (`actor`) did what (`action`)."""
        self.audit.append({"actor": actor, "action": action, "detail": detail})

    def add_timer(self, member: str, due: float) -> None:
        """Schedule a durable timer at epoch seconds `due`."""
        self.zadd[member] = ms(due)

    def remove_timer(self, member: str) -> None:
        if member:
            self.zadd.pop(member, None)
            self.zrem.append(member)

    def enqueue(self, job_id: str, kind: str = "step", token: str = "") -> None:
        """Append a work item (run the job's current step)."""
        self.work.append({"job_id": job_id, "kind": kind, "token": token})
