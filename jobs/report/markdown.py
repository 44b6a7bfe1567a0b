"""The change record as Markdown: what `/pps report` uploads and `ppsbot report` prints.

Rendered from the JSON form (`jobs.report.record`) alone, so both always say the same.
Slack user ids stay ids (`U0123ABCD`): a file is not a message, and an id is what an
audit trail needs. Pure.
"""

from __future__ import annotations

from typing import Any

from jobs.steps.plan import fmt_duration


def _cell(v: Any) -> str:
    if v is None or v == "":
        return "—"
    return str(v).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _table(head: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _dur(seconds: Any) -> str | None:
    return fmt_duration(float(seconds)) if isinstance(seconds, int | float) else None


def _size(n: Any) -> str:
    if not isinstance(n, int):
        return "—"
    return f"{n} B" if n < 1024 else f"{n / 1024:.1f} KiB" if n < 1 << 20 else \
        f"{n / (1 << 20):.1f} MiB"


def _summary(job: dict[str, Any]) -> list[str]:
    kind = "dry run" if job["dry_run"] else str(job["procedure"])
    rows = [
        ["Job", job["id"]], ["Procedure", kind], ["Cluster", job["cluster"]],
        ["Target", job["target"]], ["Outcome", job["state"]],
        ["Requested by", job["requested_by"]], ["Requested at", job["requested_at"]],
    ]
    if job.get("scheduled_at"):
        rows.append(["Scheduled for", job["scheduled_at"]])
    rows += [["Started", job["started_at"]], ["Finished", job["finished_at"]],
             ["Duration", _dur(job["duration_seconds"])], ["Acting node", job["acting_node"]]]
    return _table(["", ""], rows)


def _logins(off: dict[str, Any] | None) -> list[str]:
    if off is None:
        return ["User logins were never disabled by this job.", ""]
    if off["still_off"]:
        return [f"**User logins are still disabled**, since {off['from']} "
                f"({_dur(off['seconds'])} so far).", ""]
    return [f"User logins were off from {off['from']} to {off['until']} "
            f"({_dur(off['seconds'])}).", ""]


def _drift(drift: dict[str, Any] | None) -> list[str]:
    if drift is None:
        return ["No configuration comparison for this job.", ""]
    status = drift["status"]
    if status == "unchanged":
        return ["Configuration unchanged.", ""]
    if status != "changed":
        return [f"Configuration not compared ({status}): {_cell(drift.get('reason'))}.", ""]
    counts = ", ".join(f"{drift[k]} {k}" for k in ("changed", "added", "removed")
                       if isinstance(drift.get(k), int))
    lines = [f"Configuration changed: {counts or 'see the diff'}."]
    lines += [f"- `{p}`" for p in drift.get("paths") or []]
    if drift.get("file"):
        lines.append(f"Full diff: `{drift['file']}`")
    return [*lines, ""]


def to_markdown(rec: dict[str, Any]) -> str:
    """The Markdown change record of one job record (`build_record`'s output)."""
    job = rec["job"]
    kind = "dry run" if job["dry_run"] else job["procedure"]
    out = [f"# Change record {job['id']}: {kind} of {job['cluster']} to {job['target']}", "",
           *_summary(job), "## Who did what", ""]
    audit = [[a["at"], "bot" if not a["human"] else a["actor"], a["what"], a.get("step")]
             for a in rec["audit"]]
    out += _table(["When (UTC)", "Who", "What", "Step"], audit) if audit else \
        ["No audit entries (trimmed, or written by an older version).", ""]
    out += ["## Steps", ""]
    out += _table(["#", "Step", "Status", "Started (UTC)", "Duration", "Detail"],
                  [[s["n"], s["title"] + (" (operator-assisted)" if s["operator_assisted"]
                                          else ""), s["status"], s["started_at"],
                    _dur(s["duration_seconds"]), s["detail"]] for s in rec["steps"]])
    before, after = rec["builds"]["before"], rec["builds"]["after"]
    out += ["## Builds", ""]
    nodes = list(before) + [n for n in after if n not in before]
    out += _table(["Node", "Before", "After"], [[n, before.get(n), after.get(n)] for n in nodes]) \
        if nodes else ["No builds were read.", ""]
    out += ["## User logins", "", *_logins(rec["logins_off"])]
    esc = rec.get("escalation")
    if esc:
        resolved = f", resolved {esc['resolved_at']}" if esc.get("resolved_at") else \
            ", not resolved yet"
        out += [f"Escalated to on-call at {esc['escalated_at']}{resolved}.", ""]
    backups = rec["backups"]
    out += ["## Backups", ""]
    if backups["files"]:
        if backups.get("dir"):
            out += [f"In `{backups['dir']}`:", ""]
        out += _table(["File", "Size", "sha256"],
                      [[f["file"], _size(f["size"]), f["sha256"]] for f in backups["files"]])
    else:
        out += ["No backups were taken.", ""]
    out += ["## Configuration drift", "", *_drift(rec.get("drift"))]
    out += ["## Errors", ""]
    out += [f"- {_cell(e['where'])}: {_cell(e['text'])}" for e in rec["errors"]] or ["None."]
    out += ["", f"_Generated {rec['generated_at']} ({rec['schema']})._", ""]
    return "\n".join(out)
