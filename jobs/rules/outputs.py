"""Typed step outputs: one model per step kind, and `Outputs`, the job's merged record of them.

A step returns (or checkpoints) its own model, e.g. `InstallOut(install_sent_at=...)`; the
transition merges the fields it set into `job.outputs`. The job hash stores `Outputs` as one
JSON object with one key per field, the same flat keys earlier versions wrote, so a job
written by an older bot reads back unchanged.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class StepOut(BaseModel):
    """Base of the per-step models: only the fields a step sets are merged."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class PreflightOut(StepOut):
    preflight: list[dict[str, Any]] | None = None  # the checks, one row each
    plan: dict[str, Any] | None = None  # `jobs.steps.plan.make_plan`
    acting_node: str | None = None
    builds_before: dict[str, str] | None = None  # node -> running build
    # Set when preflight, not the command, decides where the job goes (a rollback: the
    # rollback partitions' build); it becomes `job.target`.
    target_build: str | None = None


class ConfigSnapshot(StepOut):
    """One snapshot of the configuration tree (drift check), stored beside the backups."""

    readable: bool
    node: str
    at: float
    file: str | None = None  # its name in the backup folder, when readable
    sha256: str | None = None
    objects: int = 0  # answers read
    size: int = 0  # bytes of those answers
    not_read: int = 0  # subtrees left out (a refused link, a cap, the deadline)
    reason: str | None = None  # why it is unreadable, or why subtrees were left out


class DriftChange(StepOut):
    op: Literal["+", "-", "~"]  # added, removed, changed
    path: str


class DriftReport(StepOut):
    """The configuration before vs after: counts, the first paths, the stored diff."""

    status: Literal["unchanged", "changed", "unreadable"]
    added: int = 0
    removed: int = 0
    changed: int = 0
    first: list[DriftChange] = []  # the first paths (DRIFT_LINES), by path
    compared: int = 0  # leaf settings compared
    not_compared: int = 0  # subtrees left out of either snapshot
    reason: str | None = None  # unreadable: which snapshot and why
    file: str | None = None  # the full diff in the backup folder


class BackupOut(StepOut):
    backups: list[dict[str, Any]] | None = None  # one entry per file (name, size, sha256)
    backup_dir: str | None = None
    config_before: ConfigSnapshot | None = None


class RecordOut(StepOut):
    record: dict[str, Any] | None = None  # {"nodes": {name: {...}}, "sessions": n}


class LoginRecord(StepOut):
    """How a login permission write ended."""

    enabled: bool
    via: str
    by: str  # "api", "operator" or "already"
    at: float


class LoginsOut(StepOut):
    disable_logins: LoginRecord | None = None
    disable_logins_sent_at: float | None = None
    disable_logins_target: str | None = None
    disable_logins_verify_polls: int | None = None
    enable_logins: LoginRecord | None = None
    enable_logins_sent_at: float | None = None
    enable_logins_target: str | None = None
    enable_logins_verify_polls: int | None = None


class InstallOut(StepOut):
    install_sent_at: float | None = None  # the intent, checkpointed before the call
    install_node: str | None = None
    # "unsupported" | "rejected" when it did not start; "unclear" when no clear answer came
    # back; "untouched" when the node showed no sign of it and an operator was asked
    install_outcome: str | None = None
    install_error: str | None = None
    install_accepted_at: float | None = None
    install_by: str | None = None  # "operator" when confirmed by a human
    install_unclear: str | None = None  # why the answer was not clear (reset, HTTP 502, ...)
    install_seen: str | None = None  # the last reading of the node, in words
    install_untouched_reads: int | None = None  # readings in a row that found it untouched
    install_confirm_used: str | None = None  # the confirm gate that allowed a second send


class RollbackOut(StepOut):
    rollback_sent_at: float | None = None  # the intent, checkpointed before the call
    rollback_node: str | None = None
    rollback_outcome: str | None = None  # "unsupported" | "rejected" when it did not start
    rollback_error: str | None = None
    rollback_accepted_at: float | None = None
    rollback_by: str | None = None  # "operator" when confirmed by a human


class WatchOut(StepOut):
    watch: dict[str, Any] | None = None  # `jobs.steps.reboot_observer` state between polls
    rejoined_at: float | None = None
    builds_after: dict[str, str] | None = None


class SettleOut(StepOut):
    rejoined_at: float | None = None
    settle_until: float | None = None
    settled_at: float | None = None


class VerifyOut(StepOut):
    builds_after: dict[str, str] | None = None
    summary: dict[str, Any] | None = None
    config_after: ConfigSnapshot | None = None
    drift: DriftReport | None = None


class EngineOut(StepOut):
    """What the rules record themselves."""

    evidence: dict[str, dict[str, Any]] | None = None  # gate id -> what the gate showed
    aborted_by: str | None = None
    escalated_at: float | None = None  # on-call was called (jobs.rules.escalation)
    escalation_resolved_at: float | None = None  # logins back on after the escalation


class Outputs(
    PreflightOut,
    BackupOut,
    RecordOut,
    LoginsOut,
    InstallOut,
    RollbackOut,
    WatchOut,
    SettleOut,
    VerifyOut,
    EngineOut,
):
    """Every step's outputs of one job (the `outputs` field of the job hash)."""

    model_config = ConfigDict(extra="ignore", validate_assignment=True)

    def merge(self, part: StepOut) -> None:
        """Take the fields `part` set (a field set to None is cleared)."""
        for name in part.model_fields_set:
            setattr(self, name, getattr(part, name))

    def dump(self) -> dict[str, Any]:
        """The JSON-able form stored in the job hash (fields never set are left out)."""
        return self.model_dump(mode="json", exclude_unset=True)

    def evidence_of(self, gate_id: str) -> dict[str, Any]:
        return dict((self.evidence or {}).get(gate_id, {}))

    def add_evidence(self, gate_id: str, evidence: dict[str, Any]) -> None:
        self.evidence = {**(self.evidence or {}), gate_id: evidence}
