"""Step 11, verify: every node on the target build and in the cluster; the summary.

Also the configuration drift check (`jobs.steps.drift`): reported, never a failure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jobs.appliance.protocol import Overview
from jobs.appliance.versions import matches
from jobs.rules.outputs import VerifyOut
from jobs.steps.backup_files import backup_dir
from jobs.steps.base import Advance, Fail, StepContext, StepResult
from jobs.steps.common import Failed, attempt
from jobs.steps.drift import compare_after
from jobs.steps.plan import fmt_duration
from jobs.steps.reboot_observer import in_cluster, status_words


async def run(ctx: StepContext) -> StepResult:
    """Read every node; fail naming what runs where, or advance with the summary."""
    standalone = ctx.cluster.mode == "standalone"
    builds: dict[str, str] = {}
    views: dict[str, Overview] = {}
    problems: list[str] = []
    for name in ctx.cluster.node_names:
        info = await attempt(ctx.appliance.system_info(name))
        if isinstance(info, Failed):
            problems.append(f"{name} does not answer ({info.message})")
            continue
        builds[name] = info.build
        if not matches(ctx.job.target, info.build):
            problems.append(f"{name} runs {info.build}, not {ctx.job.target}")
        ov = await attempt(ctx.appliance.overview(name))
        if isinstance(ov, Overview):
            views[name] = ov
    if not standalone:
        for name in builds:
            if not in_cluster(views, name):
                problems.append(f"{name} is not in the cluster ({status_words(views, name)})")
    folder = ctx.job.outputs.backup_dir or backup_dir(
        ctx.settings.PPS_BACKUP_DIR, ctx.cluster.name, ctx.job.id
    )
    config, drift, said = await compare_after(ctx, Path(folder))
    out = VerifyOut(builds_after=builds, config_after=config, drift=drift)
    if problems:
        return Fail("Verify: " + "; ".join(problems), outputs=out)
    out.summary = _summary(ctx, builds)
    return Advance(
        outputs=out,
        detail=f"{len(builds)} node(s) on {ctx.job.target}, cluster healthy; {said}",
    )


def _summary(ctx: StepContext, builds: dict[str, str]) -> dict[str, Any]:
    job = ctx.job
    durations: dict[str, float] = {}
    for step in ctx.procedure.steps:
        d = job.step_record(step).duration
        if d is not None:
            durations[step.value] = d
    off_rec, on_rec = job.outputs.disable_logins, job.outputs.enable_logins
    off = job.logins_disabled_at or (off_rec.at if off_rec else None)
    on = job.logins_enabled_at or (on_rec.at if on_rec else None)
    disabled_for = on - off if off and on else None
    return {
        "cluster": ctx.cluster.name,
        "target": job.target,
        "builds_before": job.outputs.builds_before or {},
        "builds_after": builds,
        "durations": durations,
        "logins_disabled_seconds": disabled_for,
        "logins_disabled_for": fmt_duration(disabled_for) if disabled_for is not None else None,
    }
