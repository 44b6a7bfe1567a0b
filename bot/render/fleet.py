"""The fleet at a glance, as Block Kit: one cluster's text, and the clusters laid out within
a block budget (the App Home tab's 100, a message's 50).

Shared by the Home tab (`bot.render.home`) and the `/pps clusters` reply. Everything read
from an appliance or the inventory is escaped; job ids and Slack ids are our own.
"""

from __future__ import annotations

import time

from slack_sdk.models.blocks import Block

from bot.render.common import fmt_when, state_word, step_label
from bot.render.limits import (
    MAX_SECTION_TEXT,
    clip,
    context,
    divider,
    escape,
    section,
    sections_for_lines,
)
from jobs.fleet.model import UNREACHABLE
from jobs.fleet.view import ClusterFacts, FleetFacts
from jobs.rules.model import Job, State
from jobs.steps.plan import fmt_duration

WARN = "⚠️"
OUTCOME_ICONS = {State.SUCCEEDED: "✅", State.FAILED: "❌", State.CANCELLED: "🚫"}


def card_link(job: Job, team_url: str | None) -> str:
    """A link to the job's card (`<url|card>`), or where it is when no link can be made."""
    if job.card_ts and job.channel and team_url:
        base = team_url if team_url.endswith("/") else team_url + "/"
        return f"<{base}archives/{job.channel}/p{job.card_ts.replace('.', '')}|card>"
    if job.channel.startswith("C"):
        return f"card in <#{job.channel}>"
    return "no card yet"


def when(epoch: float, now: float) -> str:
    """`10:42 UTC` today (in UTC), else `2030-01-05 10:42 UTC`."""
    if time.gmtime(epoch)[:3] == time.gmtime(now)[:3]:
        return time.strftime("%H:%M UTC", time.gmtime(epoch))
    return fmt_when(epoch)


def marks(f: ClusterFacts) -> list[str]:
    """The warnings of a cluster: builds differ, older than the newest, nodes not answering."""
    out = []
    if f.disagree:
        out.append(f"{WARN} nodes run different builds")
    if f.behind and f.newest:
        nodes = "" if len(f.behind) == len(f.cluster.nodes) else f" ({_names(f.behind)})"
        out.append(f"{WARN} older than {escape(f.newest)}{nodes}")
    if f.unreachable:
        out.append(f"{WARN} could not read {_names(f.unreachable)}")
    return out


def _names(names: list[str]) -> str:
    return ", ".join(escape(n) for n in names)


def _node_line(f: ClusterFacts, name: str) -> str:
    n = f.reading.node(name) if f.reading else None
    who = f"• *{escape(name)}* —"
    if n is None:
        return f"{who} not read yet"
    if n.error is not None:
        problem = "unreachable" if n.error == UNREACHABLE else escape(clip(n.error, 300))
        return f"{who} {WARN} {problem}"
    line = f"{who} {escape(n.build or '?')} · {escape(n.status or '?')}"
    if n.rollback_build:
        line += f" · rollback {escape(n.rollback_build)}"
    return line


def _logins_line(f: ClusterFacts, now: float) -> str:
    r = f.reading
    if r is None:
        return "_Not read yet._"
    if r.login_permission is None:
        head = f"{WARN} logins unknown ({escape(clip(r.error or 'no answer', 300))})"
    else:
        head = "🔓 logins on" if r.login_permission else "🔒 *logins off*"
    sessions = f" · {r.sessions} sessions" if r.sessions is not None else ""
    return f"{head}{sessions} · read {when(r.read_at, now)}"


def _job_line(job: Job, team_url: str | None) -> str:
    dry = " (dry run)" if job.dry_run else ""
    where = "" if job.terminal else f" at {step_label(job, job.step)}"
    start = ""
    if job.state is State.SCHEDULED and job.scheduled_at:
        start = f", starts {fmt_when(job.scheduled_at)}"
    return (f"▶️ `{job.id}` → {escape(job.target)}{dry}: {state_word(job.state)}{where}{start}"
            f" · {card_link(job, team_url)}")


def _last_line(job: Job, team_url: str | None) -> str:
    icon = OUTCOME_ICONS.get(job.state, "")
    dry = " (dry run)" if job.dry_run else ""
    ended = job.finished_at or job.updated_at
    took = ""
    if job.finished_at and job.created_at:
        took = f" after {fmt_duration(job.finished_at - job.created_at)}"
    link = f" · {card_link(job, team_url)}" if job.card_ts and team_url else ""
    return (f"Last: `{job.id}` → {escape(job.target)}{dry} {icon} {job.state.value} "
            f"{fmt_when(ended)}{took}{link}")


def cluster_text(f: ClusterFacts, now: float, team_url: str | None) -> str:
    """Everything about one cluster, as one mrkdwn section text (within the section limit)."""
    c = f.cluster
    head = f"*{escape(c.name)}* · {c.mode}"
    if c.window:
        head += f" · window {escape(c.window.text)}"
    lines = [head, *marks(f), *(_node_line(f, n) for n in c.node_names), _logins_line(f, now)]
    if f.active is not None:
        lines.append(_job_line(f.active, team_url))
    if f.last is not None:
        lines.append(_last_line(f.last, team_url))
    elif f.active is None:
        lines.append("No jobs yet.")
    return clip("\n".join(lines), MAX_SECTION_TEXT)


def compact_line(f: ClusterFacts) -> str:
    """One line per cluster, for fleets too big to show in full."""
    r = f.reading
    builds = sorted({escape(n.build) for n in r.nodes if n.build}) if r else []
    parts = [f"*{escape(f.cluster.name)}*", ", ".join(builds) or "not read yet",
             f"{len(f.cluster.nodes)} node(s)"]
    if r is not None and r.login_permission is not None:
        parts.append("🔓 on" if r.login_permission else "🔒 logins off")
    if f.active is not None:
        parts.append(f"▶️ `{f.active.id}`")
    if f.disagree or f.behind or f.unreachable:
        parts.append(WARN)
    return " · ".join(parts)


def summary_line(facts: FleetFacts) -> str:
    """Counts and marks across the fleet."""
    n = len(facts.clusters)
    busy = sum(1 for c in facts.clusters if c.active is not None)
    off = sum(1 for c in facts.clusters if c.logins_off)
    parts = [f"{n} cluster{'s' if n != 1 else ''}"]
    if facts.newest:
        parts.append(f"newest catalogue version {escape(facts.newest)}")
    parts.append(f"polled every {fmt_duration(facts.poll_seconds)}")
    if busy:
        parts.append(f"{busy} with a job")
    if off:
        parts.append(f"🔒 logins off on {off}")
    if facts.marked:
        names = ", ".join(escape(c.cluster.name) for c in facts.marked[:10])
        more = f" and {len(facts.marked) - 10} more" if len(facts.marked) > 10 else ""
        parts.append(f"{WARN} marked: {names}{more}")
    return " · ".join(parts)


def fleet_blocks(facts: FleetFacts, budget: int, team_url: str | None) -> list[Block]:
    """The clusters in at most `budget` blocks: in full with dividers when they fit, one
    section each when not, else the clusters worth a look in full and the rest one line
    each (packed into few sections)."""
    cs, now = facts.clusters, facts.at
    if not cs:
        return [section("No clusters in the inventory.")]
    if 2 * len(cs) <= budget:
        return [b for f in cs for b in (divider(), section(cluster_text(f, now, team_url)))]
    if len(cs) <= budget:
        return [section(cluster_text(f, now, team_url)) for f in cs]
    shown = [f for f in cs if f.attention]
    line = {id(f): compact_line(f) for f in cs}  # once, not once per try below
    for k in range(min(len(shown), budget - 1), -1, -1):
        full = shown[:k]
        ids = {id(f) for f in full}
        rest = [f for f in cs if id(f) not in ids]
        packed = sections_for_lines([line[id(f)] for f in rest])
        if k + len(packed) + 1 <= budget:
            break
    note = context(f"{len(full)} cluster(s) worth a look shown in full, "
                   f"{len(rest)} in one line each.")
    blocks: list[Block] = [*(section(cluster_text(f, now, team_url)) for f in full), note,
                           *packed]
    if len(blocks) > budget:
        cut = len(blocks) - (budget - 1)
        blocks = [*blocks[: budget - 1], context(f"_{cut} more blocks not shown._")]
    return blocks
