"""The rollback procedure's own steps: the rollback call (its step 6) at most once per job,
the disable gate that names the build it goes back to, and the reboot watch timed from the
accepted rollback.

The intent (`rollback_sent_at`, `rollback_node`) is checkpointed before the call. A re-run
that finds it never calls again: it reads the node. Rebooting, rebooted or on another build:
the rollback happened, hand over to the watch. Untouched: an operator is asked, with what
the bot saw (a second call is never sent silently). Unsupported (404/405/501) or forced
manual (`manual: [rollback]`): instructions, a confirm, then a verifying read.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from jobs.appliance.protocol import (
    ApplianceError,
    Overview,
    Rejected,
    Unreachable,
    Unsupported,
)
from jobs.appliance.versions import matches
from jobs.rules.model import Decision, Gate, GateKind, Step
from jobs.rules.outputs import InstallOut, RollbackOut
from jobs.steps import watch
from jobs.steps.base import Advance, AskApproval, AskOperator, Fail, StepContext, StepResult
from jobs.steps.common import Failed, acting_node, attempt, read_logins, resolve_active
from jobs.steps.plan import DOWNTIME, PlanFacts, fmt_duration, fmt_time

CONSOLE_PATH = "Maintenance > System > Platform"


def instructions(ctx: StepContext, node: str) -> str:
    """Where to click (the admin console's wording) and what the bot checks afterwards."""
    url = ctx.cluster.node(node).url if node in ctx.cluster.node_names else ""
    where = f"{node} ({url}/admin)" if url else node
    target = ctx.job.target
    follow = "" if ctx.cluster.mode == "standalone" else "; the other nodes follow"
    return (
        f"Roll back {where} to {target}: open {CONSOLE_PATH} and click Rollback (it boots "
        f"the rollback partition, {target}{follow}). Then press the confirm button; the bot "
        f"checks that {node} reboots or runs {target}."
    )


def rollback_note(f: PlanFacts) -> str:
    """The rollback's line in the plan."""
    if f.cluster.mode == "standalone":
        return f"{f.node} boots its rollback partition"
    return f"{f.node} boots its rollback partition; the other nodes follow"


async def run(ctx: StepContext) -> StepResult:
    """Check, checkpoint, call once; or reconcile a call already sent; or ask an operator."""
    job, out = ctx.job, ctx.job.outputs
    confirm = job.latest_gate(Step.ROLLBACK, GateKind.CONFIRM)
    if confirm is not None and confirm.decision == Decision.CONFIRMED:
        return await _verify_manual(ctx, confirm)
    if out.rollback_outcome == "rejected":
        return Fail(out.rollback_error or "Rollback refused by the appliance")
    node = out.rollback_node or acting_node(ctx)
    if out.rollback_outcome == "unsupported":
        return AskOperator(instructions(ctx, node), reason="rollback call not supported")
    if out.rollback_sent_at is not None:
        return await _reconcile(ctx, out.rollback_sent_at, node)
    if not job.target:
        return Fail("Rollback not sent: preflight recorded no rollback build")
    node_or = await _node(ctx)
    if isinstance(node_or, Failed):
        return Fail(f"Rollback not sent: {node_or.message}")
    node = node_or
    info = await attempt(ctx.appliance.system_info(node))
    if isinstance(info, Failed):
        return Fail(f"Rollback not sent: {node} does not answer ({info.message})")
    if matches(job.target, info.build):
        return Advance(
            outputs=RollbackOut(rollback_accepted_at=ctx.clock.now(), rollback_node=node),
            detail=f"{node} already runs {info.build}; nothing sent",
        )
    if info.rollback_build is None or not matches(job.target, info.rollback_build):
        holds = info.rollback_build or "nothing"
        return Fail(
            f"Rollback not sent: the rollback partition of {node} now holds {holds}, "
            f"not {job.target} as recorded"
        )
    manual = ctx.spec.manual
    if manual and manual in ctx.cluster.manual:
        return AskOperator(
            instructions(ctx, node), reason=f"the inventory lists '{manual}' as manual"
        )
    sent_at = ctx.clock.now()
    await ctx.checkpoint(RollbackOut(rollback_sent_at=sent_at, rollback_node=node))
    return await _call(ctx, node, sent_at)


async def _call(ctx: StepContext, node: str, sent_at: float) -> StepResult:
    """The one rollback call of the job; its intent is already checkpointed."""
    try:
        await ctx.appliance.rollback(node)
    except Unsupported as exc:
        await ctx.checkpoint(RollbackOut(rollback_outcome="unsupported"))
        return AskOperator(
            instructions(ctx, node), reason=f"{node} does not support this call ({exc.message})"
        )
    except Unreachable as exc:
        # Lost during the call: it may have been applied. Never resend; the watch decides.
        return Advance(
            outputs=RollbackOut(rollback_accepted_at=sent_at, rollback_node=node),
            detail=f"{node} stopped answering during the rollback call ({exc.message}); watching",
        )
    except ApplianceError as exc:  # Rejected (422, 5xx) or credentials refused
        error = f"{node} refused the rollback: {exc.message}"
        if isinstance(exc, Rejected) and exc.status == 422:
            error += " (422: no rollback partition, or the node is busy)"
        await ctx.checkpoint(RollbackOut(rollback_outcome="rejected", rollback_error=error))
        return Fail(error)
    return Advance(
        outputs=RollbackOut(rollback_accepted_at=ctx.clock.now(), rollback_node=node),
        detail=f"rollback to {ctx.job.target} accepted by {node}",
    )


async def _node(ctx: StepContext) -> str | Failed:
    """A/P: the node behind the VIP now (it may have moved since preflight); else the
    acting node chosen by preflight (A/A: any node; standalone: the node)."""
    if ctx.cluster.mode == "active-passive":
        return await resolve_active(ctx)
    return acting_node(ctx)


async def _sign(ctx: StepContext, name: str) -> tuple[str | None, str]:
    """(what shows that `name` rolls back or rolled back, else None; what was seen)."""
    info = await attempt(ctx.appliance.system_info(name))
    if isinstance(info, Failed):
        if info.unreachable:
            return f"{name} is not answering (rebooting)", ""
        return None, f"{name}: {info.message}"
    recorded: dict[str, Any] = (ctx.job.outputs.record or {}).get("nodes", {}).get(name, {})
    before = (ctx.job.outputs.builds_before or {}).get(name) or recorded.get("build")
    if matches(ctx.job.target, info.build) or (before and info.build.strip() != before.strip()):
        return f"{name} runs {info.build}", ""
    ov = await attempt(ctx.appliance.overview(name))
    if not isinstance(ov, Overview):
        return None, f"{name} on {info.build}"
    uptime = recorded.get("uptime")
    if uptime is not None and ov.uptime_seconds < float(uptime):
        return f"{name} rebooted (uptime dropped)", ""
    own = ov.member(name)
    if own is not None and own.status.endswith("Transitioning"):
        return f"{name} is busy ({own.status})", ""
    return None, f"{name} still up on {info.build}, uptime {fmt_duration(ov.uptime_seconds)}"


async def _reconcile(ctx: StepContext, sent_at: float, node: str) -> StepResult:
    """Re-entered after the intent was checkpointed: read the node, never call again."""
    when = fmt_time(sent_at)
    sign, seen = await _sign(ctx, node)
    if sign is not None:
        accepted = ctx.job.outputs.rollback_accepted_at or sent_at
        return Advance(
            outputs=RollbackOut(rollback_accepted_at=accepted, rollback_node=node),
            detail=f"rollback was sent at {when}; {sign}; not sent again, watching",
        )
    return AskOperator(
        instructions(ctx, node),
        reason=f"the rollback was sent to {node} at {when}, but the worker stopped before "
        "recording the answer and the node shows no sign of it; the bot never sends it twice",
        saw=seen,
    )


async def _verify_manual(ctx: StepContext, confirm: Gate) -> StepResult:
    """After the operator's confirm: any node rebooting, rebooted or on the rollback build?"""
    seen: list[str] = []
    for name in ctx.cluster.node_names:
        sign, what = await _sign(ctx, name)
        if sign is not None:
            at = confirm.decided_at or ctx.clock.now()
            return Advance(
                outputs=RollbackOut(
                    rollback_accepted_at=at, rollback_node=name, rollback_by="operator"
                ),
                detail=f"rollback confirmed: {sign}",
            )
        seen.append(what)
    node = ctx.job.outputs.rollback_node or acting_node(ctx)
    return AskOperator(
        instructions(ctx, node),
        reason=ctx.job.manual.get(Step.ROLLBACK.value, "operator-assisted"),
        saw="no sign of the rollback: " + "; ".join(seen),
    )


async def gate_disable(ctx: StepContext) -> StepResult:
    """Ask to disable all user logins: the build it goes back to, the sessions cut."""
    gate = ctx.job.latest_gate(Step.GATE_DISABLE, GateKind.APPROVAL)
    if gate is not None and gate.decision == Decision.APPROVED:
        who = f" by <@{gate.decided_by}>" if gate.decided_by else ""
        return Advance(detail=f"approved{who}")
    job = ctx.job
    logins = await read_logins(ctx)
    sessions: int | None
    if isinstance(logins, Failed):
        sessions = (job.outputs.record or {}).get("sessions")
    else:
        sessions = logins.users.sessions
    node = acting_node(ctx)
    running = sorted(set((job.outputs.builds_before or {}).values()))
    cut = "unknown number of" if sessions is None else str(sessions)
    follow = "" if ctx.cluster.mode == "standalone" else "; the other nodes follow"
    summary = [
        f"Disable all user logins on {ctx.cluster.name}, then roll {node} back to "
        f"{job.target} (its rollback partition){follow}.",
    ]
    if running:
        summary.append(f"Every node goes back from {', '.join(running)} to {job.target}.")
    summary += [f"{cut} active sessions will be cut.", f"Expect {DOWNTIME} of downtime."]
    evidence: dict[str, Any] = {
        "cluster": ctx.cluster.name,
        "target": job.target,
        "rollback_to": job.target,
        "running": running,
        "acting_node": node,
        "sessions": sessions,
        "downtime": f"expect {DOWNTIME} of downtime",
        "summary": summary,
    }
    return AskApproval(evidence=evidence)


async def watch_reboot(ctx: StepContext) -> StepResult:
    """The upgrade's reboot watch (`jobs.steps.watch`, which compares against job.target),
    its deadline and VIP home taken from the accepted rollback instead of an install."""
    out = ctx.job.outputs
    view = copy.deepcopy(ctx.job)  # a private view: nothing of it is committed but results
    view.outputs.merge(
        InstallOut(
            install_sent_at=out.rollback_sent_at,
            install_accepted_at=out.rollback_accepted_at,
            install_node=out.rollback_node,
        )
    )
    return await watch.run(replace(ctx, job=view))
