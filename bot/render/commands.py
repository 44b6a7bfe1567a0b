"""Replies to `/pps` commands (ephemeral acks), rendered from `handlers.replies`.

Refusals are the bot's own words (user and channel mentions kept, nothing else); every
name, build or error text that came from outside is escaped."""

from __future__ import annotations

from bot.render.common import (
    fmt_when,
    job_line,
    outside,
    procedure_word,
    state_word,
    step_label,
    target_text,
)
from bot.render.fleet import fleet_blocks, summary_line
from bot.render.limits import (
    MAX_BLOCKS,
    Message,
    channel_link,
    escape,
    escape_keep_mentions,
    mention,
    message,
    section,
    sections_for_lines,
)
from handlers.grammar import USAGE_LINES
from handlers.replies import (
    Aborted,
    ClusterList,
    ClusterReport,
    Failed,
    HelpText,
    JobList,
    JobReport,
    Queued,
    RateLimited,
    Refused,
    Reply,
    ReportQueued,
    Usage,
)
from jobs.fleet.view import FleetFacts
from jobs.rules.model import Job, State
from jobs.steps.plan import fmt_duration


def _lines(lines: list[str]) -> Message:
    return message(lines[0], sections_for_lines(lines))


def _usage_block() -> list[str]:
    return ["*Usage*", *(f"`{escape(u)}`" for u in USAGE_LINES)]


# No inline code here: the ack's only inline code is the job id (DESIGN §4.1).
NO_WORKER = ("⚠️ No worker is running: queued jobs wait until one starts "
             "(run *ppsbot worker*; see the README's Operations section).")


def _queued(r: Queued) -> list[str]:
    job = r.job
    if not r.created:
        return [f"That request already created `{job.id}` ({state_word(job.state)}, "
                f"requested by {mention(job.requester)}); no second job was made."]
    arrow = f"{outside(job.cluster)} → {target_text(job)}"
    kind = (procedure_word(job) or "upgrade").capitalize()
    where = f"Progress in {channel_link(r.channel)}." if r.channel.startswith("C") else \
        "Progress in this channel."
    warn = [NO_WORKER] if r.workers == 0 else []
    if job.dry_run:
        dry = f"{kind} dry run" if procedure_word(job) else "Dry run"
        head = f"{dry} `{job.id}` queued for {arrow}: preflight only, nothing changes."
        return [head, f"The preflight result and the plan follow. {where}", *warn]
    if job.state is State.SCHEDULED and job.scheduled_at:
        return [f"{kind} `{job.id}` scheduled for {arrow}, starting "
                f"{fmt_when(job.scheduled_at)}.", where, *warn]
    return [f"{kind} `{job.id}` queued for {arrow}.", where, *warn]


def _job(job: Job) -> list[str]:
    lines = [job_line(job)]
    if not job.terminal:
        lines.append(f"Current step: {step_label(job, job.step)}.")
    if job.error:
        lines.append(f"Error: {outside(job.error)}")
    if job.logins_disabled:
        lines.append("🔒 User logins are disabled.")
    if job.channel:
        lines.append(f"Card in {channel_link(job.channel)}.")
    return lines


# The last `/pps clusters` reply and what it was rendered from. Concurrent callers share one
# fleet reading (`FleetView.facts`), and the reply depends on nothing else: rendering it
# once per reading, not once per caller, took 344 clusters' layout (about 4 ms of CPU each)
# off all but one of them. Keyed on the reading object itself, so a new reading renders anew.
_last_clusters: tuple[FleetFacts, str | None, Message] | None = None


def _clusters(fleet: FleetFacts, team_url: str | None) -> Message:
    global _last_clusters
    last = _last_clusters
    if last is not None and last[0] is fleet and last[1] == team_url:
        return last[2]
    if not fleet.clusters:
        msg = _lines(["No clusters in the inventory."])
    else:
        top = section(f"*Clusters* · {summary_line(fleet)}")
        msg = message(f"Clusters: {summary_line(fleet)}",
                      [top, *fleet_blocks(fleet, MAX_BLOCKS - 1, team_url)])
    _last_clusters = (fleet, team_url, msg)
    return msg


def render_reply(reply: Reply, team_url: str | None = None) -> Message:
    """The ephemeral ack for a command's outcome (`team_url`: the workspace's, for links)."""
    match reply:
        case Usage(problem=problem, usage=usage):
            head = escape(problem) if problem else "I did not understand that."
            tail = [f"Usage: `{escape(usage)}`"] if usage else _usage_block()
            return _lines([head, *tail, "`/pps help` lists every command."])
        case HelpText():
            return _lines(["`/pps` runs the KB12940 firmware upgrade on PPS clusters, "
                           "and rolls it back (`rollback`: to the rollback partitions' build).",
                           *_usage_block(),
                           "`--at` takes HH:MM (next occurrence, in the cluster window's zone) "
                           "or ISO-8601; `--dry-run` runs preflight and shows the plan."])
        case Refused(message=msg):
            return _lines([f"⛔ {escape_keep_mentions(msg, channels=True)}"])
        case RateLimited(limit=limit, retry_at=retry_at, now=now):
            wait = fmt_duration(max(60.0, retry_at - now))
            return _lines([f"⛔ You have made {limit} upgrade requests in the last hour (dry "
                           "runs count too): that is the limit per person "
                           "(PPS_USER_UPGRADES_PER_HOUR). Nothing was created.",
                           f"You can ask again at {fmt_when(retry_at)} (in about {wait})."])
        case Queued():
            return _lines(_queued(reply))
        case JobReport(job=job):
            return _lines(_job(job))
        case ClusterReport(cluster=c, active=active, last=last):
            if active is not None:
                return _lines([f"{outside(c.name)} is busy with `{active.id}` "
                               f"(requested by {mention(active.requester)}).", *_job(active)])
            tail = [f"Last job: {job_line(last)}"] if last else ["No jobs yet."]
            return _lines([f"{outside(c.name)} has no active job.", *tail])
        case JobList(title=title, jobs=jobs, empty=empty, workers=workers):
            if not jobs:
                return _lines([outside(empty)])
            warn = [NO_WORKER] if workers == 0 else []
            return _lines([f"*{outside(title)}*", *(job_line(j) for j in jobs), *warn])
        case ClusterList(fleet=fleet):
            return _clusters(fleet, team_url)
        case Aborted(job=job):
            if job.state is State.CANCELLED:
                return _lines([f"Job `{job.id}` cancelled. Nothing else will run."])
            if job.logins_disabled:
                return _lines([f"Abort of `{job.id}` accepted. User logins were already "
                               "disabled, so the enable request is offered: an approver "
                               "approves it to re-enable logins, then the job ends."])
            return _lines([f"Abort of `{job.id}` accepted ({state_word(job.state)})."])
        case ReportQueued(job=job):
            where = "in its thread" if job.card_ts else f"in <#{job.channel}>" \
                if job.channel.startswith("C") else "in the job's channel"
            return _lines([f"The change record of `{job.id}` is being posted {where} as a "
                           "Markdown file (*ppsbot report* prints it too)."])
        case Failed(ref=ref):
            return _lines([f"Something went wrong on my side (ref `{escape(ref)}`). "
                           "Check `/pps status` before trying again."])
    raise AssertionError(f"unhandled reply {reply!r}")  # pragma: no cover

