"""Step 6, install: upload the target package to the acting node, at most once per job
without a human's confirm.

The intent (`install_sent_at`, `install_node`) is checkpointed before the upload. When the
answer never comes back (the worker died in between, a reset, a timeout) or is unclear
(any 5xx: a proxy's 502/504 too, while the upgrade may have started), the step never sends
again on its own: it reads the acting node (`jobs.steps.install_check`) and watches when
the install started, keeps reading while it cannot tell (until the reboot deadline), and
when the node is plainly untouched asks an operator to confirm a second send. Unsupported
or forced manual: instructions, a confirm, then a verifying read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jobs.appliance.protocol import (
    ApplianceError,
    Overview,
    Rejected,
    SystemInfo,
    Unreachable,
    Unsupported,
)
from jobs.appliance.versions import matches
from jobs.config.inventory import Firmware
from jobs.rules.model import Decision, Gate, GateKind, Job, Step
from jobs.rules.outputs import InstallOut
from jobs.steps.base import Advance, AskOperator, Fail, Poll, StepContext, StepResult
from jobs.steps.common import Failed, acting_node, attempt, firmware, resolve_active
from jobs.steps.install_check import Verdict, judge, read_node
from jobs.steps.plan import fmt_duration, fmt_time

UNTOUCHED_READS = 3  # reads, a poll apart, that must all find the node untouched
REFUSED, UNSUPPORTED, UNCLEAR, UNTOUCHED = "rejected", "unsupported", "unclear", "untouched"


# -- this step's part of job.outputs: read and written only through these ---------------
@dataclass(frozen=True)
class Sent:
    """What the step recorded about the install it sent (or meant to send)."""

    at: float | None  # install_sent_at: the intent of the latest send
    node: str  # install_node
    outcome: str  # install_outcome: "", rejected, unsupported, unclear, untouched
    error: str  # install_error: the refusal, in the appliance's words
    unclear: str  # install_unclear: why the answer was not clear
    seen: str  # install_seen: the last reading of the node
    untouched_reads: int  # install_untouched_reads: consecutive "untouched" readings
    confirm_used: str  # install_confirm_used: the confirm gate that allowed the latest send


def sent(job: Job) -> Sent:
    out = job.outputs
    return Sent(
        at=out.install_sent_at,
        node=out.install_node or "",
        outcome=out.install_outcome or "",
        error=out.install_error or "",
        unclear=out.install_unclear or "",
        seen=out.install_seen or "",
        untouched_reads=out.install_untouched_reads or 0,
        confirm_used=out.install_confirm_used or "",
    )


def intent(at: float, node: str, confirm: Gate | None = None) -> InstallOut:
    """The checkpoint before an upload (a second one names the confirm that allowed it)."""
    if confirm is None:
        return InstallOut(install_sent_at=at, install_node=node)
    return InstallOut(
        install_sent_at=at,
        install_node=node,
        install_confirm_used=confirm.id,
        install_outcome=None,
        install_unclear=None,
        install_untouched_reads=0,
    )


def accepted(at: float, node: str, seen: str | None = None) -> InstallOut:
    """The install is under way (or done): the reboot watch takes over from `at`."""
    if seen is None:
        return InstallOut(install_accepted_at=at, install_node=node)
    return InstallOut(install_accepted_at=at, install_node=node, install_seen=seen)


def refused(error: str) -> InstallOut:
    return InstallOut(install_outcome=REFUSED, install_error=error)


def unclear(why: str) -> InstallOut:
    return InstallOut(
        install_outcome=UNCLEAR, install_unclear=why, install_seen="", install_untouched_reads=0
    )


def untouched(seen: str, reads: int) -> InstallOut:
    return InstallOut(install_outcome=UNTOUCHED, install_seen=seen, install_untouched_reads=reads)


def reading(seen: str, untouched_reads: int) -> InstallOut:
    return InstallOut(install_seen=seen, install_untouched_reads=untouched_reads)


# -- the step ------------------------------------------------------------------------------
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
    """Check, checkpoint, upload once; reconcile an unclear answer; or ask an operator."""
    job = ctx.job
    fw = firmware(ctx)
    if fw is None:
        return Fail(f"Install: {job.target} is no longer in the firmware catalogue")
    st = sent(job)
    confirm = job.latest_gate(Step.INSTALL, GateKind.CONFIRM)
    if confirm is not None and confirm.decision == Decision.CONFIRMED:
        if st.outcome == UNTOUCHED:
            return await _send_again(ctx, fw, st, confirm)
        if confirm.id != st.confirm_used:
            return await _verify_manual(ctx, fw, confirm)
    if st.outcome == REFUSED:
        return Fail(st.error or "Install refused by the appliance")
    if st.outcome == UNSUPPORTED:
        return AskOperator(
            instructions(ctx, fw, st.node or acting_node(ctx)), reason="install call not supported"
        )
    if st.at is not None:
        return await _reconcile(ctx, fw, st)
    node_or = await _node(ctx)
    if isinstance(node_or, Failed):
        return Fail(f"Install not sent: {node_or.message}")
    node = node_or
    info = await attempt(ctx.appliance.system_info(node))
    if isinstance(info, Failed):
        return Fail(f"Install not sent: {node} does not answer ({info.message})")
    if matches(job.target, info.build):
        return Advance(
            outputs=accepted(ctx.clock.now(), node),
            detail=f"{node} already runs {info.build}; nothing sent",
        )
    manual = ctx.spec.manual
    if manual and manual in ctx.cluster.manual:
        return AskOperator(
            instructions(ctx, fw, node), reason=f"the inventory lists '{manual}' as manual"
        )
    await ctx.checkpoint(intent(ctx.clock.now(), node))
    return await _send(ctx, fw, node)


def _unclear(exc: ApplianceError, again: bool) -> bool:
    """No answer, or one that does not say whether the install started (5xx, a 2xx whose
    body could not be read; on a second send also 422, "already in progress")."""
    if isinstance(exc, Unreachable):
        return True
    if not isinstance(exc, Rejected):
        return False
    return exc.status >= 500 or 200 <= exc.status < 300 or (again and exc.status == 422)


async def _send(ctx: StepContext, fw: Firmware, node: str, again: bool = False) -> StepResult:
    """The upload itself, after its intent was checkpointed (`again`: a confirmed resend)."""
    try:
        await ctx.appliance.install(node, fw.file)
    except Unsupported as exc:
        await ctx.checkpoint(InstallOut(install_outcome=UNSUPPORTED))
        return AskOperator(
            instructions(ctx, fw, node), reason=f"{node} does not support this call ({exc.message})"
        )
    except ApplianceError as exc:  # Rejected (422, 5xx), unreachable, credentials refused
        if _unclear(exc, again):
            # It may have been applied. Never resend: read the node first, a poll from now.
            text = (
                f"No clear answer to the install from {node} ({exc.message}); it is not "
                f"sent again: reading {node} first"
            )
            return Poll(
                after=ctx.settings.PPS_POLL_SECONDS,
                outputs=unclear(exc.message),
                progress=text,
                detail=text,
            )
        error = f"{node} refused the install: {exc.message}"
        await ctx.checkpoint(refused(error))
        return Fail(error)
    return Advance(
        outputs=accepted(ctx.clock.now(), node), detail=f"{fw.file.name} accepted by {node}"
    )


async def _look(ctx: StepContext, node: str, since: float) -> tuple[Verdict, str]:
    """Read `node` and judge whether an install sent at `since` reached it."""
    seen = await read_node(ctx, node)
    record: dict[str, Any] = (ctx.job.outputs.record or {}).get("nodes", {})
    return judge(
        seen,
        target=ctx.job.target,
        since_sent=ctx.clock.now() - since,
        rollback_before=record.get(node, {}).get("rollback_build"),
        clustered=ctx.cluster.mode != "standalone",
    )


async def _reconcile(ctx: StepContext, fw: Firmware, st: Sent) -> StepResult:
    """The install was sent (or meant to be) and no clear answer is recorded: look first."""
    assert st.at is not None
    node, now = st.node or acting_node(ctx), ctx.clock.now()
    why = st.unclear or "no answer was recorded: the worker stopped during the upload"
    verdict, what = await _look(ctx, node, st.at)
    if verdict is Verdict.STARTED:
        return Advance(
            outputs=accepted(st.at, node, seen=what),
            detail=f"no clear answer to the install ({why}), but {what}: watching",
        )
    timeout = ctx.settings.PPS_REBOOT_TIMEOUT_SECONDS
    if now - st.at >= timeout:
        return Fail(
            f"Install: cannot tell whether {node} received the install sent at "
            f"{fmt_time(st.at)} ({why}); {fmt_duration(timeout)} of reading it. "
            f"Last seen: {what}"
        )
    reads = st.untouched_reads + 1 if verdict is Verdict.UNTOUCHED else 0
    if verdict is Verdict.UNTOUCHED and _untouched_long_enough(ctx, reads, now - st.at):
        return AskOperator(
            _resend_instructions(ctx, fw, node, st.at, why, what),
            reason=f"no clear answer to the install from {node} ({why}), and {node} shows no "
            "sign of it; it is never sent twice without a human",
            saw=what,
            outputs=untouched(what, reads),
            detail=f"{what}; send the install again? (confirm in the thread)",
        )
    return Poll(
        after=ctx.settings.PPS_POLL_SECONDS,
        outputs=reading(what, reads),
        progress=f"Install: {what}" if what != st.seen else None,
        detail=f"no clear answer to the install ({why}); {what}",
    )


def _untouched_long_enough(ctx: StepContext, reads: int, since_sent: float) -> bool:
    """Untouched on enough reads in a row. A standalone node shows nothing while it
    installs (no cluster status to say "Transitioning"), only its reboot minutes later:
    it must also stay untouched for a third of the reboot deadline."""
    if reads < UNTOUCHED_READS:
        return False
    if ctx.cluster.mode != "standalone":
        return True
    return since_sent >= ctx.settings.PPS_REBOOT_TIMEOUT_SECONDS / 3


async def _send_again(ctx: StepContext, fw: Firmware, st: Sent, confirm: Gate) -> StepResult:
    """An operator confirmed a second send of an install that left no trace: look once
    more, then send (unless it started meanwhile, perhaps by hand in the console)."""
    node_or = await _node(ctx)
    node = node_or if isinstance(node_or, str) else st.node or acting_node(ctx)
    since = confirm.decided_at or ctx.clock.now()
    verdict, what = await _look(ctx, node, st.at if st.at is not None else since)
    if verdict is Verdict.STARTED:
        return Advance(
            outputs=accepted(since, node, seen=what),
            detail=f"confirmed by <@{confirm.decided_by}>; {what}: not sent again, watching",
        )
    if verdict is Verdict.UNKNOWN:
        if ctx.clock.now() - since >= ctx.settings.PPS_REBOOT_TIMEOUT_SECONDS:
            return Fail(f"Install not sent again: {what}")
        return Poll(
            after=ctx.settings.PPS_POLL_SECONDS,
            outputs=reading(what, 0),
            progress=f"Install: {what}; sent again once clear" if what != st.seen else None,
            detail=f"confirmed: send again once {node} is clear; {what}",
        )
    await ctx.checkpoint(intent(ctx.clock.now(), node, confirm))
    return await _send(ctx, fw, node, again=True)


def _resend_instructions(
    ctx: StepContext, fw: Firmware, node: str, at: float, why: str, what: str
) -> str:
    return (
        f"The install of {ctx.job.target} was sent to {node} at {fmt_time(at)}, but no clear "
        f"answer came back ({why}), and {node} shows no sign of it: {what}.\n"
        f"Press the confirm button to have the bot send it again: it reads {node} once more "
        "first and sends nothing if the install has started by then. If the console of "
        f"{node} shows an install in progress, confirm only once it is back: the bot then "
        "sees the new build and watches.\n"
        f"Or install it yourself: {instructions(ctx, fw, node)}\n"
        "Until someone confirms, the job waits here and user logins stay disabled."
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
