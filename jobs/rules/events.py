"""Job events on the `events` stream, consumed by the notifier (at-least-once).

Each stream entry has fields `job_id`, `kind`, `seq` (per-job, increasing), `at` (epoch
seconds) and `data` (JSON object). The notifier re-reads the job hash to render the card,
and uses `kind` + `data` for thread replies and approval messages. `seq` lets it drop
duplicates: an event with a `seq` it has already handled for that job is ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class EventKind(StrEnum):
    CREATED = "created"  # data: {"dry_run", "scheduled_at"}
    STEP_STARTED = "step_started"  # data: {"step"}
    STEP_DONE = "step_done"  # data: {"step", "detail", "duration"}
    STEP_FAILED = "step_failed"  # data: {"step", "error"}
    STATE = "state"  # data: {"from", "to", "reason"}
    PROGRESS = "progress"  # data: {"step", "text"} (reboot watch, VIP flip, ...)
    GATE_OPENED = "gate_opened"  # data: {"gate_id", "gate_kind", "step", "evidence": {...}}
    GATE_DECIDED = "gate_decided"  # data: {"gate_id", "decision", "user", "step"}
    MANUAL = "manual"  # data: {"gate_id", "step", "instructions", "reason", "saw"?}
    REMINDER = "reminder"  # data: {"since", "text"}  logins still disabled
    LOGINS_DISABLED_ALERT = "logins_alert"  # data: {"text"} failure/hold with logins off
    PLAN = "plan"  # data: {"preflight": [...], "plan": {...}}  dry runs
    FINISHED = "finished"  # data: {"state", "summary": {...}}
    # data: {"channel", "oncall", "since", "text"}: logins off too long, on-call called
    ESCALATED = "escalated"
    ESCALATION_RESOLVED = "escalation_resolved"  # data: {"channel", "since", "text"}


@dataclass(frozen=True)
class Event:
    job_id: str
    kind: EventKind
    seq: int
    at: float
    data: dict[str, Any] = field(default_factory=dict)

    def to_fields(self) -> dict[str, str]:
        return {
            "job_id": self.job_id,
            "kind": self.kind.value,
            "seq": str(self.seq),
            "at": repr(self.at),
            "data": json.dumps(self.data, separators=(",", ":"), sort_keys=True),
        }

    @classmethod
    def from_fields(cls, f: dict[str, str] | dict[bytes, bytes]) -> Event:
        d = {
            (k.decode() if isinstance(k, bytes) else k): (
                v.decode() if isinstance(v, bytes) else v
            )
            for k, v in f.items()
        }
        return cls(
            job_id=d["job_id"],
            kind=EventKind(d["kind"]),
            seq=int(d.get("seq", "0")),
            at=float(d.get("at", "0")),
            data=json.loads(d.get("data") or "{}"),
        )
