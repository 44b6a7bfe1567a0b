"""The change record of one job as data: the JSON form a ticketing system imports.

Built from the job record and its entries in the `audit` stream (who did what, when); pure.
Times are ISO-8601 UTC strings (`2025-03-01T01:02:03Z`), durations seconds. The shape is
`SCHEMA` and is documented in the README ("Change records"); fields are only ever added.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel

from jobs.procedures import procedure_for
from jobs.rules.model import Job, StepStatus

SCHEMA = "pps-chatops/change-record/v1"
# What an audit action reads as, for people; any other action is shown as written.
ACTION_WORDS = {
    "create": "requested",
    "abort": "aborted the job",
    "aborted": "closed the open request (abort)",
    "expired": "request expired: nobody answered",
    "escalated": "escalated to on-call",
    "escalation_resolved": "escalation resolved: logins back on",
}


def iso(epoch: float | None) -> str | None:
    """Epoch seconds as ISO-8601 UTC, or None."""
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _num(raw: Any) -> float | None:
    try:
        return float(raw)
    except (TypeError, ValueError):
        return None


def _audit(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for e in entries:
        raw = e.get("detail")
        detail: dict[str, Any] = raw if isinstance(raw, dict) else {}
        action = str(e.get("action", ""))
        word = "finished: " + action.split(":", 1)[1] if action.startswith("finished:") \
            else ACTION_WORDS.get(action, action)
        out.append({
            "at": iso(_num(e.get("at"))),
            "actor": str(e.get("actor", "")),
            "human": str(e.get("actor", "")) != "engine",
            "action": action,
            "what": word,
            "step": detail.get("step"),
            "gate": detail.get("gate"),
            "detail": detail,
        })
    return out


def _steps(job: Job) -> list[dict[str, Any]]:
    procedure = procedure_for(job)
    rows = []
    for i, step in enumerate(procedure.steps[:1] if job.dry_run else procedure.steps, 1):
        rec = job.step_record(step)
        rows.append({
            "n": i,
            "step": step.value,
            "title": procedure.title_of(step),
            "status": rec.status.value,
            "started_at": iso(rec.started_at),
            "finished_at": iso(rec.finished_at),
            "duration_seconds": round(rec.duration, 3) if rec.duration is not None else None,
            "operator_assisted": step.value in job.manual,
            "detail": rec.detail or None,
        })
    return rows


def _logins_off(job: Job, now: float) -> dict[str, Any] | None:
    if job.logins_disabled_at is None:
        return None
    still = job.logins_disabled
    end = now if still or job.logins_enabled_at is None else job.logins_enabled_at
    return {
        "from": iso(job.logins_disabled_at),
        "until": None if still else iso(job.logins_enabled_at),
        "seconds": round(max(0.0, end - job.logins_disabled_at), 3),
        "still_off": still,
    }


def _drift(job: Job) -> dict[str, Any] | None:
    """The configuration drift report, when the job has one (read defensively: older and
    newer jobs store it differently or not at all)."""
    raw = getattr(job.outputs, "drift", None)
    if isinstance(raw, BaseModel):
        raw = raw.model_dump(mode="json")
    if not isinstance(raw, dict):
        return None
    listed = raw.get("first")
    first: list[Any] = listed if isinstance(listed, list) else []
    return {
        "status": str(raw.get("status", "unknown")),
        "added": raw.get("added"),
        "removed": raw.get("removed"),
        "changed": raw.get("changed"),
        "paths": [f"{c.get('op', '~')} {c.get('path')}" for c in first if isinstance(c, dict)],
        "reason": raw.get("reason"),
        "file": raw.get("file"),
    }


def _errors(job: Job) -> list[dict[str, str]]:
    """What the card shows as errors: the job's error, why it is held, failed steps."""
    out = []
    if job.error:
        out.append({"where": "job", "text": job.error})
    if job.held_reason:
        out.append({"where": "held", "text": job.held_reason})
    for step in procedure_for(job).steps:
        rec = job.step_record(step)
        if rec.status is StepStatus.FAILED and rec.detail and rec.detail != job.error:
            out.append({"where": step.value, "text": rec.detail})
    return out


def _first_start(job: Job) -> float | None:
    starts = [float(r["started_at"]) for r in job.steps.values() if r.get("started_at")]
    return min(starts) if starts else None


def build_record(job: Job, audit: list[dict[str, Any]], now: float) -> dict[str, Any]:
    """The change record of `job` (`audit`: its entries of the audit stream, oldest first)."""
    started, ended = _first_start(job), job.finished_at
    out = job.outputs
    return {
        "schema": SCHEMA,
        "generated_at": iso(now),
        "job": {
            "id": job.id,
            "procedure": job.procedure,
            "cluster": job.cluster,
            "target": job.target,
            "state": job.state.value,
            "dry_run": job.dry_run,
            "allow_downgrade": job.allow_downgrade,
            "requested_by": job.requester,
            "requested_at": iso(job.created_at),
            "scheduled_at": iso(job.scheduled_at),
            "started_at": iso(started),
            "finished_at": iso(ended),
            "duration_seconds": round(ended - started, 3) if started and ended else None,
            "channel": job.channel or None,
            "card_ts": job.card_ts or None,
            "acting_node": job.acting_node or None,
        },
        "audit": _audit(audit),
        "steps": _steps(job),
        "builds": {"before": dict(out.builds_before or {}), "after": dict(out.builds_after or {})},
        "logins_off": _logins_off(job, now),
        "backups": {
            "dir": out.backup_dir,
            "files": [{"file": f.get("file"), "size": f.get("size"), "sha256": f.get("sha256")}
                      for f in out.backups or []],
        },
        "drift": _drift(job),
        "escalation": None if out.escalated_at is None else {
            "escalated_at": iso(out.escalated_at),
            "resolved_at": iso(out.escalation_resolved_at),
        },
        "errors": _errors(job),
    }
