"""Helpers shared by the steps: the acting node, the login target, reads that never raise,
the reboot deadline."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

from jobs.appliance.protocol import VIP, ActiveUsers, ApplianceError, SystemInfo, Unreachable
from jobs.config.inventory import Cluster, Firmware
from jobs.config.settings import Settings
from jobs.rules.model import Job
from jobs.steps.base import StepContext

T = TypeVar("T")


@dataclass(frozen=True)
class Failed:
    """A read that did not answer: `unreachable` for connection problems, else an error."""

    message: str
    unreachable: bool


async def attempt(call: Awaitable[T]) -> T | Failed:
    """Await an appliance call; an `ApplianceError` becomes a `Failed` value."""
    try:
        return await call
    except Unreachable as exc:
        return Failed(exc.message, unreachable=True)
    except ApplianceError as exc:
        return Failed(exc.message, unreachable=False)


def acting_node(ctx: StepContext) -> str:
    """The node chosen by preflight (first listed until then)."""
    chosen = ctx.job.outputs.acting_node or ctx.job.acting_node
    return str(chosen) if chosen else ctx.cluster.nodes[0].name


def label(target: str) -> str:
    """How a call target reads in a message."""
    return "the VIP" if target == VIP else target


def firmware(ctx: StepContext) -> Firmware | None:
    return ctx.inventory.firmware_for(ctx.job.target)


def login_targets(ctx: StepContext) -> list[str]:
    """DESIGN §4.7: the VIP if set, else the acting node; then any other member."""
    first = acting_node(ctx)
    rest = [n for n in ctx.cluster.node_names if n != first]
    return ([VIP] if ctx.cluster.vip else []) + [first, *rest]


@dataclass(frozen=True)
class LoginRead:
    target: str
    users: ActiveUsers


async def read_logins(ctx: StepContext) -> LoginRead | Failed:
    """Read active users through the first login target that answers."""
    problems: list[str] = []
    for target in login_targets(ctx):
        got = await attempt(ctx.appliance.active_users(target))
        if isinstance(got, ActiveUsers):
            return LoginRead(target, got)
        problems.append(f"{label(target)}: {got.message}")
    return Failed("; ".join(problems), unreachable=True)


def node_for_host(cluster: Cluster, host: str) -> str | None:
    """The node a reported `host-name` means: its name, ignoring case, or followed by a domain
    (an appliance may report `EAST-A.corp.example` for inventory node `east-a`)."""
    names = cluster.node_names
    if host in names:
        return host
    key = host.strip().casefold()
    hits = [n for n in names if n.casefold() == key]
    if not hits:  # the longest node name that the host name starts with, then a dot
        prefixed = [n for n in names if key.startswith(n.casefold() + ".")]
        longest = max((len(n) for n in prefixed), default=0)
        hits = [n for n in prefixed if len(n) == longest]
    return hits[0] if len(hits) == 1 else None


async def resolve_active(ctx: StepContext) -> str | Failed:
    """The acting node now (DESIGN §4.8): A/P by the VIP's host name, else first reachable."""
    names = ctx.cluster.node_names
    if ctx.cluster.mode == "active-passive":
        if not ctx.cluster.vip:
            return names[0]
        info = await attempt(ctx.appliance.system_info(VIP))
        if isinstance(info, Failed):
            return Failed(f"the VIP does not answer ({info.message})", info.unreachable)
        node = node_for_host(ctx.cluster, info.host_name)
        if node is None:
            return Failed(
                f"the VIP reports host {info.host_name!r}, not a node of {ctx.cluster.name}",
                unreachable=False,
            )
        return node
    for name in names:
        got = await attempt(ctx.appliance.system_info(name))
        if isinstance(got, SystemInfo):
            return name
    return Failed("no node answers", unreachable=True)


def reboot_deadline(job: Job, settings: Settings) -> float | None:
    """When the nodes must be back (DESIGN §4.11): `PPS_REBOOT_TIMEOUT_SECONDS` after the
    install was accepted, or sent when no answer came; None before any install."""
    out = job.outputs
    start = out.install_accepted_at
    if start is None:
        start = out.install_sent_at
    if start is None and out.watch is not None:
        start = out.watch.get("started_at")
    return None if start is None else float(start) + settings.PPS_REBOOT_TIMEOUT_SECONDS
