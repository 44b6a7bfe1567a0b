"""Step 1, preflight: every precondition of KB12940 checked, all failures listed at once.

Reads only. Advances with the check list, the plan, the acting node and the builds before;
fails with every failed check named. `run` is the upgrade's; `run_rollback` the rollback's
(a rollback partition with one build on every node, which becomes the job's target).
"""

from __future__ import annotations

from typing import Any

from jobs.appliance.protocol import Overview, SystemInfo
from jobs.appliance.versions import VersionError, compare_target, matches, parse_version
from jobs.config.inventory import Firmware, sha256_file
from jobs.rules.outputs import PreflightOut
from jobs.steps.backup_files import backup_dir
from jobs.steps.base import Advance, Fail, StepContext, StepResult
from jobs.steps.common import (
    Failed,
    attempt,
    firmware,
    read_logins,
    resolve_active,
)
from jobs.steps.drift import preflight_row
from jobs.steps.plan import make_plan
from jobs.steps.reboot_observer import in_cluster, reported, status_words


class Checks:
    """Collects `{"check", "ok", "detail"}` rows."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(self, check: str, ok: bool, detail: str) -> None:
        self.rows.append({"check": check, "ok": ok, "detail": detail})

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if not r["ok"]]


async def run(ctx: StepContext) -> StepResult:
    """Check everything, decide the acting node, build the plan."""
    checks = Checks()
    cluster, job = ctx.cluster, ctx.job
    _window(ctx, checks)
    infos, views = await _read_nodes(ctx, checks)
    _membership(ctx, checks, infos, views)
    package = _package(ctx, checks)
    _versions(ctx, checks, infos)
    acting = await resolve_active(ctx)
    if isinstance(acting, Failed):
        checks.add("acting node", False, f"cannot tell the acting node: {acting.message}")
        acting_name: str | None = None
    else:
        acting_name = acting
        checks.add("acting node", True, f"acting node {acting}")
    if job.dry_run:  # whether the drift check will work; never a failed check
        checks.rows.append(await preflight_row(ctx, acting_name))
    logins = await read_logins(ctx)
    sessions = None if isinstance(logins, Failed) else logins.users.sessions
    plan = make_plan(
        ctx.procedure,
        cluster,
        job.target,
        package,
        acting_name,
        backup_dir(ctx.settings.PPS_BACKUP_DIR, cluster.name, job.id),
        ctx.settings.PPS_SETTLE_SECONDS,
        sessions,
    )
    if checks.failed:
        return Fail(
            error="Preflight failed: " + "; ".join(r["detail"] for r in checks.failed),
            outputs=PreflightOut(preflight=checks.rows, plan=plan),
        )
    return Advance(
        outputs=PreflightOut(
            preflight=checks.rows,
            plan=plan,
            acting_node=acting_name,
            builds_before={n: i.build for n, i in infos.items()},
        ),
        detail=f"{len(checks.rows)} checks passed; acting node {acting_name}",
    )


def _membership(
    ctx: StepContext,
    checks: Checks,
    infos: dict[str, SystemInfo],
    views: dict[str, Overview],
) -> None:
    cluster = ctx.cluster
    if cluster.mode == "standalone":
        return
    if infos and not views:
        checks.add("cluster status", False, "no node answered the cluster status")
        return
    for name in cluster.node_names:
        words = status_words(views, name)
        if in_cluster(views, name):
            checks.add(f"member {name}", True, f"{name} enabled and in the cluster ({words})")
        elif not reported(views, name):
            checks.add(f"member {name}", False, f"{name} is not listed in the cluster status")
        else:
            checks.add(f"member {name}", False, f"{name} is not in the cluster ({words})")


def _package(ctx: StepContext, checks: Checks) -> Firmware | None:
    fw = firmware(ctx)
    if fw is None:
        checks.add("target package", False, f"{ctx.job.target} is not in the firmware catalogue")
        return None
    if not fw.file.is_file():
        checks.add("target package", False, f"package file {fw.file} not found")
        return fw
    digest = sha256_file(fw.file)
    if digest != fw.sha256:
        checks.add(
            "target package",
            False,
            f"sha256 of {fw.file.name} is {digest[:12]}…, catalogue says {fw.sha256[:12]}…",
        )
    else:
        checks.add("target package", True, f"{fw.file.name} sha256 matches")
    return fw


def _versions(ctx: StepContext, checks: Checks, infos: dict[str, SystemInfo]) -> None:
    """Rollback copy available; target differs from running; downgrade only when allowed."""
    running = sorted({i.build for i in infos.values()})
    if len(running) > 1:
        detail = ", ".join(f"{n} on {i.build}" for n, i in infos.items())
        checks.add("same build", False, f"nodes run different builds: {detail}")
    for build in running:
        copy = next((f for f in ctx.inventory.firmware if matches(f.version, build)), None)
        if copy is None:
            checks.add(
                "rollback package",
                False,
                f"no package for the running {build} in the catalogue (keep a rollback copy)",
            )
        elif not copy.file.is_file():
            checks.add("rollback package", False, f"rollback package file {copy.file} not found")
        else:
            checks.add("rollback package", True, f"rollback copy {copy.file.name} present")
        target = ctx.job.target
        try:
            order = compare_target(target, build)
        except VersionError:
            checks.add("version", False, f"cannot compare {target!r} with {build!r}")
            continue
        if order == 0:
            checks.add("version", False, f"already running {build}; nothing to upgrade")
        elif order < 0 and not ctx.job.allow_downgrade:
            checks.add(
                "version",
                False,
                f"{target} is older than the running {build}; use --allow-downgrade",
            )
        else:
            word = "downgrade" if order < 0 else "upgrade"
            checks.add("version", True, f"{word} {build} -> {target}")


# -- the rollback procedure's preflight (kept apart from the upgrade's) -------------------


async def run_rollback(ctx: StepContext) -> StepResult:
    """Rollback preflight: every node answers and is in the cluster, every node has a
    rollback partition and all hold the same build, which becomes the job's target."""
    checks = Checks()
    _window(ctx, checks)
    infos, views = await _read_nodes(ctx, checks)
    _membership(ctx, checks, infos, views)
    target = _rollback_partitions(ctx, checks, infos)
    acting = await resolve_active(ctx)
    if isinstance(acting, Failed):
        checks.add("acting node", False, f"cannot tell the acting node: {acting.message}")
        acting_name: str | None = None
    else:
        acting_name = acting
        checks.add("acting node", True, f"acting node {acting}")
    logins = await read_logins(ctx)
    sessions = None if isinstance(logins, Failed) else logins.users.sessions
    cluster, job = ctx.cluster, ctx.job
    folder = backup_dir(ctx.settings.PPS_BACKUP_DIR, cluster.name, job.id)
    plan = make_plan(
        ctx.procedure,
        cluster,
        target or "?",
        None,
        acting_name,
        folder,
        ctx.settings.PPS_SETTLE_SECONDS,
        sessions,
    )
    if checks.failed:
        return Fail(
            error="Preflight failed: " + "; ".join(r["detail"] for r in checks.failed),
            outputs=PreflightOut(preflight=checks.rows, plan=plan, target_build=target),
        )
    return Advance(
        outputs=PreflightOut(
            preflight=checks.rows,
            plan=plan,
            acting_node=acting_name,
            builds_before={n: i.build for n, i in infos.items()},
            target_build=target,
        ),
        detail=f"{len(checks.rows)} checks passed; rolls back to {target}; "
        f"acting node {acting_name}",
    )


def _window(ctx: StepContext, checks: Checks) -> None:
    window = ctx.cluster.window
    if window is None:
        return
    inside = window.contains(ctx.clock.now())
    where = "inside" if inside else "outside"
    checks.add("window", inside, f"{where} the maintenance window {window.text}")


async def _read_nodes(
    ctx: StepContext, checks: Checks
) -> tuple[dict[str, SystemInfo], dict[str, Overview]]:
    infos: dict[str, SystemInfo] = {}
    views: dict[str, Overview] = {}
    for name in ctx.cluster.node_names:
        info = await attempt(ctx.appliance.system_info(name))
        if isinstance(info, Failed):
            why = f"does not answer ({info.message})" if info.unreachable else info.message
            checks.add(f"auth {name}", False, f"{name} {why}")
            continue
        infos[name] = info
        checks.add(f"auth {name}", True, f"{name} answers, runs {info.build}")
        ov = await attempt(ctx.appliance.overview(name))
        if isinstance(ov, Overview):
            views[name] = ov
    return infos, views


def _rollback_partitions(
    ctx: StepContext, checks: Checks, infos: dict[str, SystemInfo]
) -> str | None:
    """A rollback partition on every node, one build on all, not the running one: that
    build (the rollback's target), else None with the failed check added."""
    missing = [n for n in ctx.cluster.node_names if n in infos and not infos[n].rollback_build]
    if missing:
        checks.add(
            "rollback partition", False, f"no rollback partition on {', '.join(missing)}"
        )
        return None
    if not infos:
        return None
    builds = {n: str(i.rollback_build).strip() for n, i in infos.items()}
    for name, build in builds.items():
        try:
            parse_version(build)
        except VersionError:
            checks.add("rollback partition", False, f"cannot read the rollback build of {name}")
            return None
    if len(set(builds.values())) > 1:
        detail = ", ".join(f"{n} holds {b}" for n, b in builds.items())
        checks.add("rollback partition", False, f"rollback partitions differ: {detail}")
        return None
    target = next(iter(builds.values()))
    same = [n for n, i in infos.items() if matches(target, i.build)]
    if same:
        checks.add(
            "rollback partition",
            False,
            f"{', '.join(same)} already run(s) {target}, the rollback partition's build",
        )
        return target
    partial = "" if len(infos) == len(ctx.cluster.node_names) else " of every answering node"
    checks.add("rollback partition", True, f"rollback partition{partial} holds {target}")
    return target
