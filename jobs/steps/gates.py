"""Steps 4 and 9, the approval gates: advance once approved, else ask with evidence."""

from __future__ import annotations

from typing import Any

from jobs.appliance.protocol import Overview, SystemInfo
from jobs.rules.model import Decision, GateKind, Step
from jobs.steps.base import Advance, AskApproval, StepContext, StepResult
from jobs.steps.common import Failed, acting_node, attempt, firmware, read_logins
from jobs.steps.plan import CLIENT_REMINDER, DOWNTIME, fmt_duration
from jobs.steps.reboot_observer import status_words


def _approved(ctx: StepContext, step: Step) -> Advance | None:
    gate = ctx.job.latest_gate(step, GateKind.APPROVAL)
    if gate is not None and gate.decision == Decision.APPROVED:
        who = f" by <@{gate.decided_by}>" if gate.decided_by else ""
        return Advance(detail=f"approved{who}")
    return None


async def gate_disable(ctx: StepContext) -> StepResult:
    """Ask to disable all user logins: what is cut, how long, what to do first."""
    done = _approved(ctx, Step.GATE_DISABLE)
    if done:
        return done
    job = ctx.job
    logins = await read_logins(ctx)
    sessions: int | None
    if isinstance(logins, Failed):
        sessions = (job.outputs.record or {}).get("sessions")
    else:
        sessions = logins.users.sessions
    fw = firmware(ctx)
    node = acting_node(ctx)
    cut = "unknown number of" if sessions is None else str(sessions)
    evidence: dict[str, Any] = {
        "cluster": ctx.cluster.name,
        "target": job.target,
        "package": fw.file.name if fw else None,
        "acting_node": node,
        "sessions": sessions,
        "downtime": f"expect {DOWNTIME} of downtime",
        "client_reminder": CLIENT_REMINDER,
        "summary": [
            f"Disable all user logins on {ctx.cluster.name}, then install {job.target} on {node}.",
            f"{cut} active sessions will be cut.",
            f"Expect {DOWNTIME} of downtime.",
            CLIENT_REMINDER,
        ],
    }
    return AskApproval(evidence=evidence)


async def gate_enable(ctx: StepContext) -> StepResult:
    """Ask to enable all user logins, with the builds and cluster status read now."""
    done = _approved(ctx, Step.GATE_ENABLE)
    if done:
        return done
    job = ctx.job
    builds: dict[str, str] = {}
    views: dict[str, Overview] = {}
    for name in ctx.cluster.node_names:
        info = await attempt(ctx.appliance.system_info(name))
        builds[name] = info.build if isinstance(info, SystemInfo) else f"no answer ({info.message})"
        ov = await attempt(ctx.appliance.overview(name))
        if isinstance(ov, Overview):
            views[name] = ov
    standalone = ctx.cluster.mode == "standalone"
    members = {
        n: ("standalone" if standalone else status_words(views, n)) for n in ctx.cluster.node_names
    }
    record = job.outputs.disable_logins
    since = job.logins_disabled_at or (record.at if record else None)
    off_for = fmt_duration(ctx.clock.now() - since) if since else None
    lines = [f"{n}: {builds[n]} ({members[n]})" for n in ctx.cluster.node_names]
    if off_for:
        lines.append(f"User logins disabled for {off_for}.")
    evidence: dict[str, Any] = {
        "cluster": ctx.cluster.name,
        "target": job.target,
        "builds": builds,
        "members": members,
        "logins_disabled_since": since,
        "logins_disabled_for": off_for,
        "summary": lines,
    }
    return AskApproval(evidence=evidence)
