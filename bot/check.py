"""`ppsbot check`: validate settings and inventory, reach every node, print a table.

Exit code 0 when everything is usable, 1 when a node or a setting has a problem, 2 when
the settings or the inventory cannot be loaded at all. Never prints a secret: the table
shows names, builds and states; errors are the client's secret-free messages.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TextIO

from pydantic import ValidationError

from handlers.origin import origin_problems
from jobs.appliance.client import PpsClient
from jobs.appliance.policy import RetryPolicy, Timeouts
from jobs.appliance.protocol import VIP, Appliance, ApplianceError
from jobs.config.clock import SystemClock
from jobs.config.inventory import Cluster, Inventory, InventoryError, load_inventory
from jobs.config.log import configure_logging
from jobs.config.settings import Settings
from jobs.steps.common import node_for_host
from jobs.store.keys import Keys
from jobs.store.presence import Presence
from jobs.store.redis_client import make_redis

CHECK_TIMEOUTS = Timeouts(connect=5.0, read=10.0)
CHECK_RETRY = RetryPolicy(attempts=2, base=0.3, cap=1.0)
HEADER = ("cluster", "node", "reachable", "build", "logins", "cluster status")


@dataclass
class Row:
    """What one node (or a VIP) answered."""

    cluster: str
    node: str
    reachable: str = "no"
    build: str = "-"
    logins: str = "-"
    status: str = "-"

    def cells(self) -> tuple[str, ...]:
        return (self.cluster, self.node, self.reachable, self.build, self.logins, self.status)


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def settings_problems(settings: Settings, inventory: Inventory) -> list[str]:
    """Settings that would stop the bot from working with this inventory."""
    out: list[str] = []
    if not settings.SLACK_BOT_TOKEN.get_secret_value():
        out.append("settings: SLACK_BOT_TOKEN is not set")
    if not settings.SLACK_APP_TOKEN and not settings.SLACK_SIGNING_SECRET.get_secret_value():
        out.append(
            "settings: set SLACK_SIGNING_SECRET (HTTP mode) or SLACK_APP_TOKEN (Socket Mode)"
        )
    for c in inventory.clusters.values():
        if not c.channel and not settings.PPS_CHANNEL:
            out.append(f"settings: cluster {c.name} has no channel and PPS_CHANNEL is not set")
        if not c.approvers and not settings.approvers:
            out.append(f"settings: cluster {c.name} has no approvers and PPS_APPROVERS is not set")
    return out + origin_problems(settings, inventory)


async def _check_node(client: Appliance, cluster: Cluster, target: str, report: Report) -> Row:
    label = "VIP" if target == VIP else target
    row = Row(cluster.name, label)
    try:
        info = await client.system_info(target)
        row.reachable = "yes" if target != VIP else f"yes ({info.host_name})"
        row.build = info.build
        users = await client.active_users(target)
        row.logins = "enabled" if users.login_permission else "DISABLED"
        overview = await client.overview(target)
    except ApplianceError as exc:
        row.reachable = f"no: {exc.message}"
        report.problems.append(f"{cluster.name}/{label}: {exc.message}")
        return row
    if not users.login_permission:
        report.notes.append(
            f"{cluster.name}/{label}: user logins are disabled (a job left them off?)"
        )
    if cluster.mode == "standalone":
        row.status = "standalone"
        return row
    if target == VIP:
        names = cluster.node_names
        row.status = "VIP"
        if node_for_host(cluster, info.host_name) is None:
            report.problems.append(
                f"{cluster.name}/VIP: answers as {info.host_name!r}, not one of {names}"
            )
        return row
    me = overview.member(target)
    if me is None:
        row.status = "not a member"
        report.problems.append(f"{cluster.name}/{target}: not in its cluster-member-status")
    else:
        row.status = me.status
        if not me.in_cluster:
            report.problems.append(f"{cluster.name}/{target}: cluster status {me.status!r}")
    return row


async def check_clusters(inventory: Inventory, env: dict[str, str] | None = None) -> Report:
    """Reach every node (and VIP) of every cluster, all at once."""
    report = Report()
    for cluster in inventory.clusters.values():
        username, password = cluster.credentials(env)
        client = PpsClient(cluster, username, password, timeouts=CHECK_TIMEOUTS, retry=CHECK_RETRY)
        targets = [*cluster.node_names, *([VIP] if cluster.vip else [])]
        try:
            rows = await asyncio.gather(*(_check_node(client, cluster, t, report) for t in targets))
        finally:
            await client.aclose()
        report.rows.extend(rows)
        builds = {r.build for r in rows if r.build != "-"}
        if len(builds) > 1:
            report.notes.append(f"{cluster.name}: nodes run different builds: {sorted(builds)}")
    return report


async def _redis_findings(settings: Settings) -> tuple[str | None, str | None]:
    """(a problem: Redis does not answer, a note: no worker is running)."""
    r = make_redis(settings.REDIS_URL)
    keys = Keys(settings.PPS_REDIS_PREFIX)
    try:
        await asyncio.wait_for(r.ping(), timeout=5)
        alive = await Presence(r, keys, SystemClock(), settings.PPS_LEASE_SECONDS).alive()
    except Exception as exc:  # any failure to answer is the finding itself
        return f"redis: no answer at the configured REDIS_URL ({type(exc).__name__})", None
    finally:
        await r.aclose()
    if alive == 0:
        return None, "no worker is running (`ppsbot worker`): jobs would wait in the queue"
    return None, None


def format_table(rows: Sequence[Row]) -> str:
    """Rows as aligned text columns under the header."""
    table = [HEADER, *(r.cells() for r in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in table
    )


def main(out: TextIO | None = None, *, configure_logs: bool = True) -> int:
    """Run the check; print to `out` (stdout); return the exit code."""
    out = out or sys.stdout
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"settings: invalid ({exc.error_count()} error(s))", file=out)
        for err in exc.errors():
            print(f"  {'.'.join(str(p) for p in err['loc'])}: {err['msg']}", file=out)
        return 2
    if configure_logs:
        configure_logging("WARNING", settings.LOG_FORMAT)
    try:
        inventory = load_inventory(settings.PPS_INVENTORY)
    except InventoryError as exc:
        print(f"inventory {settings.PPS_INVENTORY}: {len(exc.problems)} problem(s)", file=out)
        for p in exc.problems:
            print(f"  - {p}", file=out)
        return 2
    print(
        f"inventory {inventory.path}: {len(inventory.clusters)} cluster(s), "
        f"{len(inventory.firmware)} package(s), newest "
        f"{inventory.newest.version if inventory.newest else '-'}",
        file=out,
    )
    report = asyncio.run(check_clusters(inventory))
    redis_problem, redis_note = asyncio.run(_redis_findings(settings))
    problems = settings_problems(settings, inventory) + report.problems
    if redis_problem:
        problems.append(redis_problem)
    if redis_note:
        report.notes.append(redis_note)
    print(format_table(report.rows), file=out)
    for warning in inventory.warnings:
        print(f"WARNING: {warning}", file=out)
    for note in report.notes:
        print(f"note: {note}", file=out)
    if problems:
        print(f"{len(problems)} problem(s):", file=out)
        for p in problems:
            print(f"  - {p}", file=out)
        return 1
    print("all good", file=out)
    return 0
