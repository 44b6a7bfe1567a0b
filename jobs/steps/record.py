"""Step 3, record: running and rollback build and uptime of every node, active sessions."""

from __future__ import annotations

from typing import Any

from jobs.appliance.protocol import Overview
from jobs.rules.outputs import RecordOut
from jobs.steps.base import Advance, Fail, StepContext, StepResult
from jobs.steps.common import Failed, attempt, label, read_logins


async def run(ctx: StepContext) -> StepResult:
    """Read-only: what every node runs now, so the watch and the summary can compare."""
    nodes: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for name in ctx.cluster.node_names:
        info = await attempt(ctx.appliance.system_info(name))
        if isinstance(info, Failed):
            problems.append(f"{name}: {info.message}")
            continue
        ov = await attempt(ctx.appliance.overview(name))
        nodes[name] = {
            "build": info.build,
            "rollback_build": info.rollback_build,
            "uptime": ov.uptime_seconds if isinstance(ov, Overview) else None,
        }
    logins = await read_logins(ctx)
    if isinstance(logins, Failed):
        problems.append(f"active users: {logins.message}")
    if problems or isinstance(logins, Failed):
        return Fail("Record: cannot read " + "; ".join(problems))
    record = {
        "nodes": nodes,
        "sessions": logins.users.sessions,
        "login_permission": logins.users.login_permission,
        "read_via": label(logins.target),
        "at": ctx.clock.now(),
    }
    builds = sorted({n["build"] for n in nodes.values()})
    no_rollback = [n for n, d in nodes.items() if not d["rollback_build"]]
    detail = f"{len(nodes)} node(s) on {', '.join(builds)}; {logins.users.sessions} sessions"
    if no_rollback:
        detail += f"; no rollback partition on {', '.join(no_rollback)}"
    return Advance(outputs=RecordOut(record=record), detail=detail)
