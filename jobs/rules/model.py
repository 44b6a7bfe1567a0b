"""The job model: states, step kinds, gates, and the job record.

The step tables (order, titles, gates, side effects) are in `jobs.procedures`. The Redis
hash `job:{id}` is the serialised form of `Job` (`Job.to_hash` / `Job.from_hash`).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from jobs.rules.outputs import Outputs


class State(StrEnum):
    """Job states (DESIGN §1)."""

    SCHEDULED = "scheduled"
    QUEUED = "queued"
    RUNNING = "running"
    AWAITING_APPROVAL = "awaiting_approval"
    WAITING = "waiting"
    HELD = "held"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_STATES: frozenset[State] = frozenset({State.SUCCEEDED, State.FAILED, State.CANCELLED})
ACTIVE_STATES: frozenset[State] = frozenset(State) - TERMINAL_STATES


class Step(StrEnum):
    """The step kinds. Which ones a job runs, in which order and with which rules, is the
    table of its procedure (`jobs.procedures`)."""

    PREFLIGHT = "preflight"
    BACKUP = "backup"
    RECORD = "record"
    GATE_DISABLE = "gate_disable"
    DISABLE_LOGINS = "disable_logins"
    INSTALL = "install"
    WATCH_REBOOT = "watch_reboot"
    SETTLE = "settle"
    GATE_ENABLE = "gate_enable"
    ENABLE_LOGINS = "enable_logins"
    VERIFY = "verify"
    ROLLBACK = "rollback"  # boot the rollback partition (the rollback procedure's step 6)


class StepStatus(StrEnum):
    """Per-step status shown on the card checklist."""

    PENDING = "pending"
    RUNNING = "running"
    WAITING = "waiting"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


class GateKind(StrEnum):
    """What a human is asked: approve a gate, or confirm an operator-assisted action."""

    APPROVAL = "approval"
    CONFIRM = "confirm"


class Decision(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"
    CONFIRMED = "confirmed"
    ABORTED = "aborted"  # closed by `/pps abort`, not decided
    EXPIRED = "expired"  # nobody answered within PPS_GATE_TIMEOUT_SECONDS: the job was cancelled


@dataclass
class Gate:
    """An open or decided question to humans, bound to one step of one job.

    Ids sort in opening order within a job: `G<2-digit counter>-<random hex>`, e.g. `G03-5f2a9c`.
    """

    id: str
    kind: GateKind
    step: Step
    opened_at: float
    decision: Decision | None = None
    decided_by: str | None = None
    decided_at: float | None = None
    message_ts: str | None = None  # set by the notifier once the request is posted

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Gate:
        return cls(
            id=d["id"],
            kind=GateKind(d["kind"]),
            step=Step(d["step"]),
            opened_at=float(d["opened_at"]),
            decision=Decision(d["decision"]) if d.get("decision") else None,
            decided_by=d.get("decided_by"),
            decided_at=float(d["decided_at"]) if d.get("decided_at") is not None else None,
            message_ts=d.get("message_ts"),
        )


@dataclass
class StepRecord:
    """Timing and outcome of one step, for the card and the final summary."""

    status: StepStatus = StepStatus.PENDING
    started_at: float | None = None
    finished_at: float | None = None
    detail: str = ""

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at


# Fields of `Job` stored as JSON inside the hash.
_JSON_FIELDS = ("steps", "gates", "approvals", "manual")
_FLOAT_FIELDS = (
    "wake_at",
    "created_at",
    "updated_at",
    "scheduled_at",
    "logins_disabled_at",
    "logins_enabled_at",
    "finished_at",
)
_INT_FIELDS = ("fence", "attempts")
_BOOL_FIELDS = ("dry_run", "allow_downgrade", "logins_disabled")
# A gate's message ts lives in its own hash field `gate_ts:<gate id>`, written by the notifier
# alone, so it never races with the engine's writes of the `gates` JSON.
GATE_TS_FIELD = "gate_ts:"


@dataclass
class Job:
    """The source of truth for one upgrade, stored in the hash `job:{id}`."""

    id: str
    cluster: str
    target: str
    requester: str
    channel: str = ""
    procedure: str = "upgrade"  # the table in `jobs.procedures` (absent in old hashes)
    state: State = State.QUEUED
    step: Step = Step.PREFLIGHT
    fence: int = 0
    attempts: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0
    scheduled_at: float | None = None
    finished_at: float | None = None
    dry_run: bool = False
    allow_downgrade: bool = False
    card_ts: str = ""
    thread_ts: str = ""
    logins_disabled: bool = False
    logins_disabled_at: float | None = None
    logins_enabled_at: float | None = None
    acting_node: str = ""
    error: str = ""
    held_reason: str = ""
    # step name -> StepRecord as dict
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    # gate id -> Gate as dict (all gates ever opened, so stale clicks can be explained)
    gates: dict[str, dict[str, Any]] = field(default_factory=dict)
    # what the steps found and did, typed per step (`jobs.rules.outputs`)
    outputs: Outputs = field(default_factory=Outputs)
    # audit-friendly list of {"gate", "step", "decision", "user", "at"}
    approvals: list[dict[str, Any]] = field(default_factory=list)
    # step name -> reason the step runs operator-assisted
    manual: dict[str, str] = field(default_factory=dict)
    # durable timers owned by the job (members of the `timers` zset); "" when none
    wake_at: float | None = None  # when the current poll/settle/start timer is due
    wake_timer: str = ""
    reminder_timer: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.outputs, dict):  # a plain mapping (old callers, tests): validate it
            self.outputs = Outputs.model_validate(self.outputs)

    # -- derived ---------------------------------------------------------------
    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    def step_record(self, step: Step) -> StepRecord:
        d = self.steps.get(step.value)
        if not d:
            return StepRecord()
        return StepRecord(
            status=StepStatus(d.get("status", StepStatus.PENDING)),
            started_at=d.get("started_at"),
            finished_at=d.get("finished_at"),
            detail=d.get("detail", ""),
        )

    def set_step_record(self, step: Step, rec: StepRecord) -> None:
        self.steps[step.value] = {
            "status": rec.status.value,
            "started_at": rec.started_at,
            "finished_at": rec.finished_at,
            "detail": rec.detail,
        }

    def open_gate(self) -> Gate | None:
        """The gate currently waiting for a decision, if any."""
        for d in self.gates.values():
            g = Gate.from_dict(d)
            if g.decision is None:
                return g
        return None

    def gate(self, gate_id: str) -> Gate | None:
        d = self.gates.get(gate_id)
        return Gate.from_dict(d) if d else None

    def latest_gate(self, step: Step, kind: GateKind | None = None) -> Gate | None:
        """The most recently opened gate of `step` (optionally of one kind)."""
        found = [
            g
            for g in (Gate.from_dict(d) for d in self.gates.values())
            if g.step == step and (kind is None or g.kind == kind)
        ]
        return max(found, key=lambda g: (g.opened_at, g.id)) if found else None

    @property
    def settled(self) -> bool:
        """Terminal and logins not left disabled: the cluster lock may be released."""
        return self.terminal and not self.logins_disabled

    @property
    def needs_reminder(self) -> bool:
        """Logins are disabled and a human decision is awaited (DESIGN §4.12)."""
        return self.logins_disabled and self.open_gate() is not None

    def add_gate(self, kind: GateKind, step: Step, now: float) -> Gate:
        """Open a new gate (ids `G<counter>-<6 hex>` sort in opening order)."""
        gate = Gate(f"G{len(self.gates) + 1:02d}-{secrets.token_hex(3)}", kind, step, now)
        self.gates[gate.id] = gate.to_dict()
        return gate

    def decide_gate(self, gate_id: str, decision: Decision, user: str, now: float) -> Gate:
        """Record the decision on a gate; returns the decided gate."""
        gate = Gate.from_dict(self.gates[gate_id])
        gate.decision, gate.decided_by, gate.decided_at = decision, user, now
        self.gates[gate_id] = gate.to_dict()
        return gate

    # -- serialisation ---------------------------------------------------------
    def to_hash(self) -> dict[str, str]:
        """Flatten to a Redis hash mapping (all values strings)."""
        out: dict[str, str] = {}
        for k, v in asdict(self).items():
            if k == "outputs":
                out[k] = json.dumps(self.outputs.dump(), separators=(",", ":"), sort_keys=True)
                continue
            if k == "gates":
                for gid, g in v.items():
                    if g.get("message_ts"):
                        out[GATE_TS_FIELD + gid] = str(g["message_ts"])
                v = {gid: {**g, "message_ts": None} for gid, g in v.items()}
            if k in _JSON_FIELDS:
                out[k] = json.dumps(v, separators=(",", ":"), sort_keys=True)
            elif k in _BOOL_FIELDS:
                out[k] = "1" if v else "0"
            elif v is None:
                out[k] = ""
            else:
                out[k] = str(v.value if isinstance(v, StrEnum) else v)
        return out

    @classmethod
    def from_hash(cls, h: dict[str, str] | dict[bytes, bytes]) -> Job:
        """Rebuild from `HGETALL` output (str or bytes)."""
        d: dict[str, str] = {
            (k.decode() if isinstance(k, bytes) else k): (
                v.decode() if isinstance(v, bytes) else v
            )
            for k, v in h.items()
        }
        kw: dict[str, Any] = {}
        for name in cls.__dataclass_fields__:
            if name not in d:
                continue
            raw = d[name]
            if name == "outputs":
                kw[name] = Outputs.model_validate(json.loads(raw) if raw else {})
            elif name in _JSON_FIELDS:
                kw[name] = json.loads(raw) if raw else ({} if name != "approvals" else [])
            elif name in _BOOL_FIELDS:
                kw[name] = raw == "1"
            elif name in _FLOAT_FIELDS:
                default = 0.0 if name in ("created_at", "updated_at") else None
                kw[name] = float(raw) if raw else default
            elif name in _INT_FIELDS:
                kw[name] = int(raw or 0)
            elif name == "state":
                kw[name] = State(raw)
            elif name == "step":
                kw[name] = Step(raw)
            else:
                kw[name] = raw
        gates = kw.get("gates", {})
        for k, ts in d.items():
            gid = k[len(GATE_TS_FIELD) :]
            if k.startswith(GATE_TS_FIELD) and ts and gid in gates:
                gates[gid]["message_ts"] = ts
        return cls(**kw)
