"""The change record built from a job and its audit entries (`jobs.report`), pure: a failed
job held with logins still off, an escalation, a drift report read defensively, and the
Markdown saying the same as the JSON."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from jobs.report import build_record, to_markdown
from jobs.rules.model import Job, State, Step, StepRecord, StepStatus
from jobs.rules.outputs import BackupOut, PreflightOut

T0 = 1_750_000_000.0  # 2025-06-15T15:06:40Z


def held_job() -> Job:
    job = Job(id="J-0042", cluster="east", target="9.1R18", requester="UREQ", channel="CEAST",
              state=State.FAILED, step=Step.GATE_ENABLE, created_at=T0, card_ts="1.2")
    job.set_step_record(Step.PREFLIGHT, StepRecord(StepStatus.DONE, T0 + 1, T0 + 4, "ok"))
    job.set_step_record(Step.WATCH_REBOOT, StepRecord(StepStatus.FAILED, T0 + 100, T0 + 1900,
                                                      "east-b did not come back | timeout"))
    job.error = "Watch the reboot failed: east-b did not come back"
    job.held_reason = "enable request rejected by <@UAPP>; user logins stay disabled"
    job.logins_disabled, job.logins_disabled_at = True, T0 + 60
    job.outputs.merge(PreflightOut(builds_before={"east-a": "9.1R17", "east-b": "9.1R17"}))
    job.outputs.merge(BackupOut(backup_dir="/b/east/J-0042", backups=[
        {"file": "system.cfg", "size": 2048, "sha256": "ab" * 32}]))
    job.outputs.escalated_at = T0 + 1860
    return job


AUDIT: list[dict[str, Any]] = [
    {"at": repr(T0), "actor": "UREQ", "action": "create", "detail": {"target": "9.1R18"}},
    {"at": repr(T0 + 50), "actor": "UAPP", "action": "approved",
     "detail": {"gate": "G01-aaaaaa", "step": "gate_disable"}},
    {"at": repr(T0 + 1860), "actor": "engine", "action": "escalated", "detail": {}},
    {"at": repr(T0 + 1950), "actor": "UAPP", "action": "rejected",
     "detail": {"gate": "G02-bbbbbb", "step": "gate_enable"}},
]


def test_a_held_job_with_logins_off() -> None:
    rec = build_record(held_job(), AUDIT, now=T0 + 3660)
    assert rec["job"]["requested_at"] == "2025-06-15T15:06:40Z"
    assert rec["job"]["started_at"] == "2025-06-15T15:06:41Z"
    assert rec["job"]["finished_at"] is None and rec["job"]["duration_seconds"] is None
    assert [(a["actor"], a["what"], a["human"]) for a in rec["audit"]] == [
        ("UREQ", "requested", True), ("UAPP", "approved", True),
        ("engine", "escalated to on-call", False), ("UAPP", "rejected", True)]
    assert rec["logins_off"] == {"from": "2025-06-15T15:07:40Z", "until": None,
                                 "seconds": 3600.0, "still_off": True}
    assert rec["escalation"] == {"escalated_at": "2025-06-15T15:37:40Z", "resolved_at": None}
    assert [e["where"] for e in rec["errors"]] == ["job", "held", "watch_reboot"]
    assert rec["drift"] is None
    watch = next(s for s in rec["steps"] if s["step"] == "watch_reboot")
    assert watch["status"] == "failed" and watch["duration_seconds"] == 1800.0
    md = to_markdown(rec)
    assert "**User logins are still disabled**, since 2025-06-15T15:07:40Z (1 h 00 min" in md
    assert "| 2025-06-15T15:39:10Z | UAPP | rejected | gate_enable |" in md
    assert "| bot | escalated to on-call |" in md
    assert "Escalated to on-call at 2025-06-15T15:37:40Z, not resolved yet." in md
    assert "- watch_reboot: east-b did not come back \\| timeout" in md  # a pipe, escaped
    assert "| east-a | 9.1R17 | — |" in md
    assert "| system.cfg | 2.0 KiB | " + "ab" * 32 + " |" in md
    assert "No configuration comparison for this job." in md


class Change(BaseModel):
    op: str
    path: str


class Drift(BaseModel):
    """Shaped like the drift report a newer version stores in `job.outputs.drift`."""

    status: str
    added: int = 0
    removed: int = 0
    changed: int = 0
    first: list[Change] = []
    file: str | None = None


def test_a_drift_report_is_summarised_when_the_job_has_one() -> None:
    job = held_job()
    drift = Drift(status="changed", changed=2, added=1,
                  first=[Change(op="~", path="/system/dns"), Change(op="+", path="/users/x")],
                  file="config-diff.json")
    object.__setattr__(job.outputs, "drift", drift)  # a field this version does not declare
    rec = build_record(job, [], now=T0)
    assert rec["drift"]["status"] == "changed"
    assert rec["drift"]["paths"] == ["~ /system/dns", "+ /users/x"]
    md = to_markdown(rec)
    assert "Configuration changed: 2 changed, 1 added, 0 removed." in md
    assert "- `~ /system/dns`" in md and "Full diff: `config-diff.json`" in md
    assert "No audit entries" in md
    object.__setattr__(job.outputs, "drift", {"status": "unchanged"})
    assert "Configuration unchanged." in to_markdown(build_record(job, [], now=T0))
    object.__setattr__(job.outputs, "drift", "garbage")
    assert build_record(job, [], now=T0)["drift"] is None
