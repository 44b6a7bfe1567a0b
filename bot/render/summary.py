"""The final summary of a job and the dry-run plan.

Summary: per-step durations, how long user logins were disabled, builds before and after
per node, backup files, the configuration drift check. Plan: the preflight checks, then
the steps with what each will do, the acting node, backups, gates and expected downtime.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import Block

from bot.render.common import outside, procedure_word, state_word, target_text
from bot.render.limits import Message, clip, header, mention, message, section, sections_for_lines
from jobs.procedures import Procedure, procedure_for
from jobs.rules.model import Job, State, Step
from jobs.steps.drift import DIFF as DIFF_FILE
from jobs.steps.plan import fmt_duration

_TITLES: dict[str, str] = {
    State.SUCCEEDED.value: "{cluster} upgraded to {target}",
    State.FAILED.value: "{cluster}: upgrade to {target} failed",
    State.CANCELLED.value: "{cluster}: upgrade to {target} cancelled",
}
_ROLLBACK_TITLES: dict[str, str] = {
    State.SUCCEEDED.value: "{cluster} rolled back to {target}",
    State.FAILED.value: "{cluster}: rollback to {target} failed",
    State.CANCELLED.value: "{cluster}: rollback to {target} cancelled",
}
_TITLES_OF: dict[str, dict[str, str]] = {"upgrade": _TITLES, "rollback": _ROLLBACK_TITLES}


def _durations(d: dict[str, Any], procedure: Procedure) -> list[str]:
    lines = []
    for i, spec in enumerate(procedure.rows, 1):
        secs = d.get(spec.step.value)
        if isinstance(secs, int | float):
            lines.append(f"{i:>2}. {spec.title:<42} {fmt_duration(secs):>10}")
    return lines


def _builds(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    lines = []
    for node in list(before) + [n for n in after if n not in before]:
        b, a = before.get(node), after.get(node)
        arrow = f"`{outside(str(b or '?'))}` → `{outside(str(a))}`" if a else \
            f"`{outside(str(b))}` (not read after)"
        lines.append(f"• {outside(str(node))}: {arrow}")
    return lines


def _size(n: Any) -> str:
    if not isinstance(n, int):
        return "?"
    return f"{n} B" if n < 1024 else f"{n / 1024:.1f} KiB" if n < 1 << 20 else \
        f"{n / (1 << 20):.1f} MiB"


def _backups(job: Job, files: list[dict[str, Any]]) -> list[str]:
    where = job.outputs.backup_dir
    lines = [f"*Backups* in `{outside(str(where))}`:" if where else "*Backups:*"]
    for f in files:
        digest = str(f.get("sha256", ""))[:12]
        lines.append(f"• `{outside(str(f.get('file')))}` {_size(f.get('size'))}, "
                     f"sha256 `{outside(digest)}…`")
    return lines


DRIFT_PATH_CHARS = 100  # a path longer than this is cut (20 of them fit one section)


def drift_lines(job: Job, drift: Any) -> list[str]:
    """The drift check's lines: "configuration unchanged", or the changed paths."""
    if not isinstance(drift, dict):
        return []
    status = drift.get("status")
    where = f" Full diff: `{DIFF_FILE}` (`ppsbot diff {job.id}`)." if drift.get("file") else ""
    if status == "unreadable":
        why = outside(str(drift.get("reason") or "the tree could not be read"))
        return [f"❔ *Drift check:* configuration not compared ({why}).{where}"]
    left = drift.get("not_compared") or 0
    skipped = f" {left} subtree(s) not compared (left out of a snapshot)." if left else ""
    if status == "unchanged":
        compared = drift.get("compared") or 0
        return [f"⚙️ *Drift check:* configuration unchanged ({compared} settings compared)."
                f"{skipped}"]
    counts = [f"{drift.get(k)} {k}" for k in ("changed", "removed", "added") if drift.get(k)]
    first = [c for c in drift.get("first") or [] if isinstance(c, dict)]
    rows = [f"{c.get('op')} {clip(str(c.get('path')), DRIFT_PATH_CHARS)}" for c in first]
    total = sum(int(drift.get(k) or 0) for k in ("changed", "removed", "added"))
    more = f"\n… and {total - len(rows)} more" if total > len(rows) else ""
    block = "```" + outside("\n".join(rows)) + more + "```" if rows else ""
    head = f"⚠️ *Drift check:* configuration changed ({', '.join(counts)}).{skipped}{where}"
    return [head + ("\n" + block if block else "")]


def final_summary(job: Job, data: dict[str, Any]) -> Message:
    """The summary posted when a job ends (FINISHED event data: state, summary)."""
    state = str(data.get("state") or job.state.value)
    s: dict[str, Any] = data.get("summary") or {}
    other = procedure_word(job)
    titles = _TITLES_OF.get(job.procedure, _TITLES)
    title = titles.get(state, "{cluster}: {target}").format(cluster=job.cluster,
                                                            target=target_text(job))
    if job.dry_run:
        title = f"{job.cluster}: {other + ' ' if other else ''}dry run for {target_text(job)} " \
            f"{state}"
    blocks: list[Block] = [header(title)]
    try:
        word = state_word(State(state))
    except ValueError:
        word = state
    lead = [f"{word} · job `{job.id}` · requested by {mention(job.requester)}"]
    if s.get("total_seconds") is not None:
        lead.append(f"Total time {fmt_duration(float(s['total_seconds']))}.")
    if s.get("aborted_by"):
        lead.append(f"Aborted by {mention(str(s['aborted_by']))}.")
    off = s.get("logins_disabled_seconds")
    if isinstance(off, int | float):
        lead.append(f"🔒 User logins were disabled for *{fmt_duration(off)}*.")
    blocks.append(section("\n".join(lead)))
    if s.get("error"):
        blocks.append(section(f"*Error:* {outside(str(s['error']))}"))
    durations = _durations(s.get("durations") or {}, procedure_for(job))
    if durations:
        blocks.append(section("*Step durations*\n```" + "\n".join(durations) + "```"))
    before, after = s.get("builds_before") or {}, s.get("builds_after") or {}
    if before or after:
        blocks.extend(sections_for_lines(["*Builds before → after*", *_builds(before, after)]))
    files = s.get("backups") or []
    if files:
        blocks.extend(sections_for_lines(_backups(job, files)))
    blocks.extend(sections_for_lines(drift_lines(job, s.get("drift"))))
    if job.dry_run:
        blocks.extend(sections_for_lines(_preflight(job.outputs.preflight or [])))
    return message(f"{outside(title)} ({job.id})", blocks)


def _preflight(rows: list[Any]) -> list[str]:
    lines = ["*Preflight*"] if rows else []
    for r in rows:
        if isinstance(r, dict):
            icon = "⚠️" if r.get("warn") else "✅" if r.get("ok") else "❌"
            lines.append(f"{icon} {outside(str(r.get('detail') or r.get('check')))}")
        else:
            lines.append(f"• {outside(str(r))}")
    return lines


def _plan_lines(plan: dict[str, Any], procedure: Procedure) -> list[str]:
    lines = ["*Plan*"]
    for i, row in enumerate(plan.get("steps") or [], 1):
        if not isinstance(row, dict):
            continue
        try:
            title = procedure.title_of(Step(str(row.get("step"))))
        except (ValueError, KeyError):
            title = str(row.get("title", "?"))
        note = f" — {outside(str(row['note']))}" if row.get("note") else ""
        lines.append(f"{i}. {title}{note}")
    facts = [
        ("Acting node", plan.get("acting_node")),
        ("Package", (plan.get("package") or {}).get("file")),
        ("Backups to", plan.get("backup_dir")),
        ("Gates", ", ".join(plan.get("gates") or []) or None),
        ("Expected downtime", plan.get("downtime")),
        ("Active sessions now", plan.get("sessions")),
        ("Maintenance window", plan.get("window")),
        ("Operator-assisted", ", ".join(plan.get("manual") or []) or None),
    ]
    lines += [f"*{k}:* {outside(str(v))}" for k, v in facts if v not in (None, "")]
    return lines


def dry_run_plan(job: Job, data: dict[str, Any]) -> Message:
    """The dry run's answer: the preflight result and the plan (PLAN event data)."""
    other = procedure_word(job)
    kind = f"{other.capitalize()} dry run" if other else "Dry run"
    title = f"{kind} {job.id}: {job.cluster} → {target_text(job)}"
    blocks: list[Block] = [header(title)]
    blocks.extend(sections_for_lines(_preflight(data.get("preflight") or [])))
    plan = data.get("plan")
    if isinstance(plan, dict):
        blocks.extend(sections_for_lines(_plan_lines(plan, procedure_for(job))))
    run = f"/pps {job.procedure} {outside(job.cluster)}" if other else \
        f"/pps upgrade {outside(job.cluster)} {outside(job.target)}"
    blocks.append(section(f"Nothing was changed. Run `{run}` to do it."))
    return message(f"{outside(title)}: preflight passed, plan ready", blocks)
