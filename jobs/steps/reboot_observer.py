"""Reboot watch (step 7), pure logic: fold one poll of every node into per-node progress.

A node has rebooted when it was seen unreachable, its uptime dropped below the previous
reading, or its build changed. It is finished when it has rebooted, runs the target build
and every answering member's overview lists it in the cluster (a standalone appliance: it
answers). With a VIP, the host behind it is followed and each move reported. The state is
a JSON-able dict kept in the job's outputs between polls.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from jobs.appliance.protocol import MemberStatus, Overview
from jobs.appliance.versions import matches
from jobs.steps.plan import fmt_duration, fmt_time


@dataclass(frozen=True)
class Reading:
    """What one node answered at one poll (unreachable: no answer at all)."""

    reachable: bool
    build: str | None = None
    uptime: float | None = None
    error: str | None = None  # answered, but with an error (auth, 5xx while booting)


@dataclass
class NodeWatch:
    """Progress of one node, sticky where it must be (a reboot seen stays seen)."""

    build_before: str | None
    build: str | None
    uptime: float | None
    reachable: bool = True
    seen_down: bool = False
    uptime_dropped: bool = False
    rebooted: bool = False
    on_target: bool = False
    in_cluster: bool = False
    status: str = ""
    down_since: float | None = None
    last_seen: str = "not polled yet"

    @property
    def done(self) -> bool:
        return self.rebooted and self.on_target and self.in_cluster and self.reachable


@dataclass
class Observation:
    state: dict[str, Any]
    lines: list[str] = field(default_factory=list)
    done: bool = False


def start(
    nodes: list[str],
    builds_before: dict[str, str],
    uptimes_before: dict[str, float | None],
    started_at: float,
    vip_home: str | None = None,
) -> dict[str, Any]:
    """The state before the first poll. `vip_home`: the A/P active node when a VIP is set."""
    state: dict[str, Any] = {
        "started_at": started_at,
        "polls": 0,
        "nodes": {
            n: asdict(NodeWatch(builds_before.get(n), builds_before.get(n), uptimes_before.get(n)))
            for n in nodes
        },
    }
    if vip_home is not None:
        state["vip"] = {"home": vip_home, "host": vip_home, "flips": []}
    return state


def observe(
    state: dict[str, Any],
    readings: dict[str, Reading],
    views: dict[str, Overview],
    *,
    now: float,
    target: str,
    standalone: bool,
    vip_host: str | None = None,
) -> Observation:
    """Fold one poll into a copy of `state`; report what changed and whether all are done."""
    nodes = {n: NodeWatch(**d) for n, d in state["nodes"].items()}
    lines: list[str] = []
    for name, nw in nodes.items():
        r = readings.get(name, Reading(reachable=False, error="not polled"))
        lines.extend(_fold(name, nw, r, views, now, target, standalone))
    new: dict[str, Any] = {
        **state,
        "polls": int(state.get("polls", 0)) + 1,
        "nodes": {n: asdict(nw) for n, nw in nodes.items()},
    }
    vip_ok = True
    if "vip" in state:
        vip, vip_lines = _vip(dict(state["vip"]), vip_host, now)
        new["vip"] = vip
        lines.extend(vip_lines)
        vip_ok = vip_host is not None
    done = all(nw.done for nw in nodes.values()) and vip_ok
    if done:
        where = "answers" if standalone else "is back in the cluster"
        lines.append(
            f"{next(iter(nodes))} runs {target} and {where}"
            if len(nodes) == 1
            else f"All {len(nodes)} nodes run {target} and are back in the cluster"
        )
    return Observation(state=new, lines=lines, done=done)


def _fold(
    name: str,
    nw: NodeWatch,
    r: Reading,
    views: dict[str, Overview],
    now: float,
    target: str,
    standalone: bool,
) -> list[str]:
    lines: list[str] = []
    was_reachable, was_on_target, was_in = nw.reachable, nw.on_target, nw.in_cluster
    was_rebooted, old_status = nw.rebooted, nw.status
    if not r.reachable:
        nw.reachable = False
        nw.in_cluster = False
        nw.seen_down = True
        nw.rebooted = True
        if was_reachable:
            nw.down_since = now
            lines.append(f"{name} stopped answering (rebooting)")
        last = f", last on {nw.build}" if nw.build else ""
        since = fmt_time(nw.down_since) if nw.down_since is not None else "?"
        nw.last_seen = f"not answering since {since}{last}"
        return lines
    nw.reachable = True
    nw.down_since = None
    if r.build is None:
        # Answering, but not its system information (REST service still starting, auth):
        # not back yet, whatever the other members say.
        nw.in_cluster = False
        nw.last_seen = f"answers with an error ({r.error or 'no build'}), last on {nw.build}"
        return lines
    nw.build = r.build
    nw.on_target = matches(target, r.build)
    if nw.build_before and r.build.strip() != nw.build_before.strip():
        nw.rebooted = True
    if r.uptime is not None:
        if nw.uptime is not None and r.uptime < nw.uptime:
            nw.uptime_dropped = True
            nw.rebooted = True
        nw.uptime = r.uptime
    nw.in_cluster = standalone or in_cluster(views, name)
    nw.status = "standalone" if standalone else status_words(views, name)
    if not was_reachable:
        lines.append(f"{name} answers again, on {nw.build}")
    elif nw.rebooted and not was_rebooted:
        lines.append(f"{name} rebooted (uptime {fmt_duration(nw.uptime or 0)})")
    if nw.on_target and not was_on_target and was_reachable:
        lines.append(f"{name} runs {nw.build}")
    if not standalone:
        if nw.in_cluster and not was_in and nw.rebooted:
            lines.append(f"{name} is back in the cluster ({nw.status})")
        elif nw.status != old_status and not nw.in_cluster and was_reachable:
            lines.append(f"{name}: {nw.status}")
    err = f", error: {r.error}" if r.error else ""
    up = f", uptime {fmt_duration(nw.uptime)}" if nw.uptime is not None else ""
    nw.last_seen = f"up on {nw.build or '?'}{up}, {nw.status}{err}"
    return lines


def reported(views: dict[str, Overview], name: str) -> list[MemberStatus]:
    """Every row about `name` in the answering members' overviews (names ignore case)."""
    return [m for ov in views.values() if (m := ov.member(name)) is not None]


def in_cluster(views: dict[str, Overview], name: str) -> bool:
    """Listed, and in the cluster by every answering member's overview."""
    seen = reported(views, name)
    return bool(seen) and all(m.in_cluster for m in seen)


def status_words(views: dict[str, Overview], name: str) -> str:
    """The distinct status words the members report for `name`."""
    words = sorted({m.status for m in reported(views, name)})
    return " / ".join(words) if words else "not listed"


def _vip(vip: dict[str, Any], host: str | None, now: float) -> tuple[dict[str, Any], list[str]]:
    prev = vip.get("host")
    lines: list[str] = []
    if host != prev:
        if host is None:
            lines.append("VIP not answering")
        elif prev is not None or vip.get("flips"):
            frm = prev or vip.get("last_host")
            if host == vip["home"]:
                lines.append(f"VIP back on {host}")
            else:
                lines.append(f"VIP moved from {frm} to {host}")
            vip["flips"] = [*vip.get("flips", []), {"from": frm, "to": host, "at": now}]
        else:
            lines.append(f"VIP answers on {host}")
        if prev is not None:
            vip["last_host"] = prev
        vip["host"] = host
    return vip, lines


def last_report(state: dict[str, Any]) -> str:
    """What each node last reported, for the deadline failure."""
    parts = [f"{n}: {d.get('last_seen', '?')}" for n, d in state.get("nodes", {}).items()]
    vip = state.get("vip")
    if vip is not None:
        parts.append(f"VIP: {'on ' + vip['host'] if vip.get('host') else 'not answering'}")
    return "; ".join(parts)
