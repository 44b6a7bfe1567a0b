"""Typed step outputs: one model per step kind, and `Outputs`, the job's merged record of them.

A step returns (or checkpoints) its own model, e.g. `InstallOut(install_sent_at=...)`; the
transition merges the fields it set into `job.outputs`. The job hash stores `Outputs` as one
JSON object with one key per field, the same flat keys earlier versions wrote, so a job
written by an older bot reads back unchanged.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class StepOut(BaseModel):
    """Base of the per-step models: only the fields a step sets are merged."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class PreflightOut(StepOut):
    preflight: list[dict[str, Any]] | None = None  # the checks, one row each
    plan: dict[str, Any] | None = None  # `jobs.steps.plan.make_plan`
    acting_node: str | None = None
    builds_before: dict[str, str] | None = None  # node -> running build


class BackupOut(StepOut):
    backups: list[dict[str, Any]] | None = None  # one entry per file (name, size, sha256)
    backup_dir: str | None = None


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
    install_outcome: str | None = None  # "unsupported" | "rejected" when it did not start
    install_error: str | None = None
    install_accepted_at: float | None = None
    install_by: str | None = None  # "operator" when confirmed by a human


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
