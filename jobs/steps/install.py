"""Step 6, install: upload the target package to the acting node, at most once per job.

The intent (`install_sent_at`, `install_node`) is checkpointed before the upload; a re-run
that finds it never uploads again and hands over to the reboot watch, which sees what
happened. Unsupported or forced manual: instructions, a confirm, then a verifying read.
"""

from __future__ import annotations

from typing import Any

from jobs.appliance.protocol import (
    ApplianceError,
    Overview,
    SystemInfo,
    Unreachable,
    Unsupported,
)
from jobs.appliance.versions import matches
from jobs.config.inventory import Firmware
from jobs.rules.model import Decision, Gate, GateKind, Step
from jobs.rules.outputs import InstallOut
from jobs.steps.base import Advance, AskOperator, Fail, StepContext, StepResult
from jobs.steps.common import Failed, acting_node, attempt, firmware, resolve_active
from jobs.steps.plan import fmt_duration, fmt_time


def instructions(ctx: StepContext, fw: Firmware, node: str) -> str:
    """Where to click and what to upload (KB12940 wording of the console)."""
    url = ctx.cluster.node(node).url if node in ctx.cluster.node_names else ""
    where = f"{node} ({url}/admin)" if url else node
    return (
        f"Install {ctx.job.target} on {where}: open Maintenance > System > Upgrade/Downgrade, "
        f"choose {fw.file.name} (sha256 {fw.sha256}) and click Install Now. Then press the "
        f"confirm button; the bot checks that {node} reboots or runs {ctx.job.target}."
    )


async def run(ctx: StepContext) -> StepResult:
    """Check, checkpoint, upload once; or ask an operator and verify."""
    job, out = ctx.job, ctx.job.outputs
    fw = firmware(ctx)
    if fw is None:
        return Fail(f"Install: {job.target} is no longer in the firmware catalogue")
    confirm = job.latest_gate(Step.INSTALL, GateKind.CONFIRM)
    if confirm is not None and confirm.decision == Decision.CONFIRMED:
        return await _verify_manual(ctx, fw, confirm)
    if out.install_outcome == "rejected":
        return Fail(out.install_error or "Install refused by the appliance")
    if out.install_outcome == "unsupported":
        node = out.install_node or acting_node(ctx)
        return AskOperator(instructions(ctx, fw, node), reason="install call not supported")
    if out.install_sent_at is not None:
        sent = out.install_sent_at
        accepted = out.install_accepted_at if out.install_accepted_at is not None else sent
        return Advance(
            outputs=InstallOut(install_accepted_at=accepted),
            detail=f"install was sent at {fmt_time(sent)}; not sent again, watching",
        )
    node_or = await _node(ctx)
    if isinstance(node_or, Failed):
        return Fail(f"Install not sent: {node_or.message}")
    node = node_or
    info = await attempt(ctx.appliance.system_info(node))
    if isinstance(info, Failed):
        return Fail(f"Install not sent: {node} does not answer ({info.message})")
    if matches(job.target, info.build):
        now = ctx.clock.now()
        return Advance(
            outputs=InstallOut(install_accepted_at=now, install_node=node),
            detail=f"{node} already runs {info.build}; nothing sent",
        )
    manual = ctx.spec.manual
    if manual and manual in ctx.cluster.manual:
        return AskOperator(
            instructions(ctx, fw, node), reason=f"the inventory lists '{manual}' as manual"
        )
    sent_at = ctx.clock.now()
    await ctx.checkpoint(InstallOut(install_sent_at=sent_at, install_node=node))
    try:
        await ctx.appliance.install(node, fw.file)
    except Unsupported as exc:
        await ctx.checkpoint(InstallOut(install_outcome="unsupported"))
        return AskOperator(
            instructions(ctx, fw, node), reason=f"{node} does not support this call ({exc.message})"
        )
    except Unreachable as exc:
        # Lost during the upload: it may have been applied. Never resend; the watch decides.
        return Advance(
            outputs=InstallOut(install_accepted_at=sent_at, install_node=node),
            detail=f"{node} stopped answering during the upload ({exc.message}); watching",
        )
    except ApplianceError as exc:  # Rejected (422, 5xx) or credentials refused
        error = f"{node} refused the install: {exc.message}"
        await ctx.checkpoint(InstallOut(install_outcome="rejected", install_error=error))
        return Fail(error)
    accepted = ctx.clock.now()
    return Advance(
        outputs=InstallOut(install_accepted_at=accepted, install_node=node),
        detail=f"{fw.file.name} accepted by {node}",
    )


async def _node(ctx: StepContext) -> str | Failed:
    """A/P: the node behind the VIP now (it may have moved since preflight)."""
    if ctx.cluster.mode == "active-passive":
        return await resolve_active(ctx)
    return acting_node(ctx)


async def _verify_manual(ctx: StepContext, fw: Firmware, confirm: Gate) -> StepResult:
    """After the operator's confirm: any node rebooting, rebooted or on the target?"""
    record: dict[str, Any] = (ctx.job.outputs.record or {}).get("nodes", {})
    seen: list[str] = []
    for name in ctx.cluster.node_names:
        info = await attempt(ctx.appliance.system_info(name))
        if isinstance(info, Failed):
            if info.unreachable:
                return _accepted(ctx, confirm, name, f"{name} is not answering (rebooting)")
            seen.append(f"{name}: {info.message}")
            continue
        if matches(ctx.job.target, info.build):
            return _accepted(ctx, confirm, name, f"{name} runs {info.build}")
        ov = await attempt(ctx.appliance.overview(name))
        if not isinstance(ov, Overview):
            seen.append(f"{name} on {info.build}")
            continue
        before = record.get(name, {}).get("uptime")
        if before is not None and ov.uptime_seconds < float(before):
            return _accepted(ctx, confirm, name, f"{name} rebooted (uptime dropped)")
        own = ov.member(name)
        if own is not None and own.status.endswith("Transitioning"):
            return _accepted(ctx, confirm, name, f"{name} is installing ({own.status})")
        seen.append(_seen(name, info, ov))
    node = acting_node(ctx)
    return AskOperator(
        instructions(ctx, fw, node),
        reason=ctx.job.manual.get(Step.INSTALL.value, "operator-assisted"),
        saw="no sign of the install: " + "; ".join(seen),
    )


def _seen(name: str, info: SystemInfo, ov: Overview) -> str:
    return f"{name} still up on {info.build}, uptime {fmt_duration(ov.uptime_seconds)}"


def _accepted(ctx: StepContext, confirm: Gate, node: str, what: str) -> Advance:
    at = confirm.decided_at or ctx.clock.now()
    return Advance(
        outputs=InstallOut(install_accepted_at=at, install_node=node, install_by="operator"),
        detail=f"install confirmed: {what}",
    )
