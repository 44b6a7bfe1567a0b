"""Step 7, watch reboot: poll every node until all rebooted, run the target and rejoined.

The decisions are in `jobs.steps.reboot_observer`; this step reads the appliances, keeps
the progress in
`outputs["watch"]`, posts what changed, and fails at the deadline with each node's last
report (the runner keeps logins flagged disabled and the enable gate offered).
"""

from __future__ import annotations

from typing import Any

from jobs.appliance.protocol import VIP, Overview, SystemInfo
from jobs.rules.outputs import WatchOut
from jobs.steps.base import Advance, Fail, Poll, StepContext, StepResult
from jobs.steps.common import Failed, acting_node, attempt, node_for_host
from jobs.steps.plan import fmt_duration
from jobs.steps.reboot_observer import Reading, last_report, observe, start


def initial_state(ctx: StepContext, started_at: float) -> dict[str, Any]:
    """Seed the watch from preflight's builds and record's uptimes."""
    out = ctx.job.outputs
    recorded: dict[str, Any] = (out.record or {}).get("nodes", {})
    uptimes = {n: recorded.get(n, {}).get("uptime") for n in ctx.cluster.node_names}
    builds: dict[str, Any] = dict(out.builds_before or {})
    for n in ctx.cluster.node_names:
        builds.setdefault(n, recorded.get(n, {}).get("build"))
    vip_home = None
    if ctx.cluster.vip:
        vip_home = out.install_node or acting_node(ctx)
    return start(ctx.cluster.node_names, builds, uptimes, started_at, vip_home)


async def run(ctx: StepContext) -> StepResult:
    """One poll: read, fold, then advance, poll again, or fail at the deadline."""
    out, now = ctx.job.outputs, ctx.clock.now()
    accepted = out.install_accepted_at
    if accepted is None:
        accepted = out.install_sent_at
    state = out.watch or initial_state(ctx, accepted if accepted else now)
    since = accepted if accepted is not None else float(state["started_at"])
    readings: dict[str, Reading] = {}
    views: dict[str, Overview] = {}
    for name in ctx.cluster.node_names:
        info = await attempt(ctx.appliance.system_info(name))
        if isinstance(info, Failed):
            readings[name] = Reading(reachable=not info.unreachable, error=info.message)
            continue
        ov = await attempt(ctx.appliance.overview(name))
        if isinstance(ov, Overview):
            views[name] = ov
            readings[name] = Reading(True, info.build, ov.uptime_seconds)
        else:
            readings[name] = Reading(not ov.unreachable, info.build, None, ov.message)
    vip_host = None
    if ctx.cluster.vip:
        vip = await attempt(ctx.appliance.system_info(VIP))
        if isinstance(vip, SystemInfo):
            vip_host = node_for_host(ctx.cluster, vip.host_name) or vip.host_name
    obs = observe(
        state,
        readings,
        views,
        now=now,
        target=ctx.job.target,
        standalone=ctx.cluster.mode == "standalone",
        vip_host=vip_host,
    )
    if obs.done:
        builds = {n: d["build"] for n, d in obs.state["nodes"].items()}
        lines = [*obs.lines[:-1], f"{obs.lines[-1]} after {fmt_duration(now - since)}"]
        return Advance(
            outputs=WatchOut(watch=obs.state, rejoined_at=now, builds_after=builds),
            detail="; ".join(lines),
        )
    timeout = ctx.settings.PPS_REBOOT_TIMEOUT_SECONDS
    if now - since >= timeout:
        return Fail(
            error=f"Nodes did not all come back on {ctx.job.target} within "
            f"{fmt_duration(timeout)} of the install. Last seen: {last_report(obs.state)}",
            outputs=WatchOut(watch=obs.state),
        )
    return Poll(
        after=ctx.settings.PPS_POLL_SECONDS,
        outputs=WatchOut(watch=obs.state),
        progress="\n".join(obs.lines) or None,
    )
