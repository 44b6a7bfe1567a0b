"""Did an install reach the node? Read the acting node and judge: started, untouched, unknown.

Used by the install step when the answer to an install never came back (the worker died
between the intent checkpoint and the answer, the connection was reset, a timeout) or was
unclear (any 5xx, a proxy's 502/504 included: the upgrade may have started). `read_node`
does the reads (running and rollback build, uptime, cluster status); `judge` is pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from jobs.appliance.protocol import IN_CLUSTER_STATUSES, STATUS_TRANSITIONING, Overview
from jobs.appliance.versions import matches
from jobs.steps.base import StepContext
from jobs.steps.common import Failed, attempt
from jobs.steps.plan import fmt_duration


class Verdict(StrEnum):
    STARTED = "started"  # installing, rebooted or on the target: watch it
    UNTOUCHED = "untouched"  # up, on the old build, in the cluster, not installing
    UNKNOWN = "unknown"  # not answering, or something moves: keep reading


@dataclass(frozen=True)
class NodeSeen:
    """What one read of a node showed (`error` set when it could not be read)."""

    node: str
    error: str = ""
    unreachable: bool = False
    build: str = ""
    rollback: str | None = None
    uptime: float | None = None
    status: str | None = None  # its own row of cluster-member-status (None: standalone)
    moving: tuple[str, ...] = ()  # other members installing or away: "east-b Enabled, …"
    status_error: str = ""  # the overview (uptime, cluster status) could not be read

    def describe(self) -> str:
        """One line for the card and the thread."""
        if self.error:
            return f"{self.node} does not answer ({self.error})"
        parts = [f"{self.node} runs {self.build}"]
        if self.rollback:
            parts.append(f"rollback {self.rollback}")
        if self.uptime is not None:
            parts.append(f"up {fmt_duration(self.uptime)}")
        if self.status:
            parts.append(self.status)
        if self.moving:
            parts.append("; ".join(self.moving))
        if self.status_error:
            parts.append(f"status not readable ({self.status_error})")
        return ", ".join(parts)


async def read_node(ctx: StepContext, node: str) -> NodeSeen:
    """Read builds (system-information) and uptime and cluster status (overview) of `node`."""
    info = await attempt(ctx.appliance.system_info(node))
    if isinstance(info, Failed):
        return NodeSeen(node, error=info.message, unreachable=info.unreachable)
    ov = await attempt(ctx.appliance.overview(node))
    if not isinstance(ov, Overview):
        return NodeSeen(
            node, build=info.build, rollback=info.rollback_build, status_error=ov.message
        )
    own = ov.member(node)
    moving = tuple(
        f"{m.name} {m.status}"
        for m in ov.members
        if m is not own and m.enabled and m.status not in IN_CLUSTER_STATUSES
    )
    return NodeSeen(
        node,
        build=info.build,
        rollback=info.rollback_build,
        uptime=ov.uptime_seconds,
        status=own.status if own is not None else None,
        moving=moving,
    )


def judge(
    seen: NodeSeen,
    *,
    target: str,
    since_sent: float,
    rollback_before: str | None,
    clustered: bool,
) -> tuple[Verdict, str]:
    """Started, untouched or unknown, with the reason in words. `since_sent`: seconds since
    the install was sent; `rollback_before`: the rollback build recorded before it."""
    what = seen.describe()
    if seen.error:
        why = "rebooting, or down" if seen.unreachable else "cannot tell"
        return Verdict.UNKNOWN, f"{what}: {why}"
    if matches(target, seen.build):
        return Verdict.STARTED, f"{what}: the install went through"
    if seen.status == STATUS_TRANSITIONING:
        return Verdict.STARTED, f"{what}: installing"
    if seen.uptime is not None and seen.uptime < since_sent:
        return Verdict.STARTED, f"{what}: rebooted since the install was sent"
    if rollback_before and seen.rollback and seen.rollback != rollback_before:
        return Verdict.STARTED, f"{what}: its rollback partition changed (was {rollback_before})"
    if seen.uptime is None:
        return Verdict.UNKNOWN, f"{what}: uptime not readable"
    if clustered and seen.status not in IN_CLUSTER_STATUSES:
        return Verdict.UNKNOWN, f"{what}: not in the cluster"
    if seen.moving:
        return Verdict.UNKNOWN, f"{what}: the cluster is not at rest"
    return Verdict.UNTOUCHED, f"{what}: no sign of the install"
