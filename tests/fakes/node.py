"""The timeline of one fake PPS node: its state outside an upgrade, the upgrade scheduled
for it in absolute times, and what it is doing at any moment (pure functions of time), for
`tests.fakes.appliance.FakeCluster`."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Phases of a node at one moment.
UP, INSTALLING, REBOOTING, REJOINING, DOWN = "up", "installing", "rebooting", "rejoining", "down"
SERVING = (UP, INSTALLING)  # phases in which a node answers


@dataclass
class Upgrade:
    """One node's scheduled upgrade, in absolute times; `up_at` None = never comes back."""

    new_build: str
    install_at: float
    reboot_at: float
    up_at: float | None
    joined_at: float | None


@dataclass
class FakeNode:
    """Per-node state outside of a running upgrade."""

    name: str
    build: str
    rollback_build: str | None
    boot_at: float
    sessions: int = 0
    enabled: bool = True
    down: bool = False  # forced unreachable (fault)
    never_returns: bool = False  # fault: once it reboots it stays away
    upgrade: Upgrade | None = None


def phase(n: FakeNode, t: float) -> str:
    """What node `n` is doing at time `t` (one of the phase constants)."""
    if n.down:
        return DOWN
    u = n.upgrade
    if u is None or t < u.install_at:
        return UP
    if t < u.reboot_at:
        return INSTALLING
    if u.up_at is None or t < u.up_at:
        return REBOOTING
    if u.joined_at is None or t < u.joined_at:
        return REJOINING
    return UP


def build_at(n: FakeNode, t: float) -> str:
    """The build node `n` runs at time `t`."""
    u = n.upgrade
    if u and u.up_at is not None and t >= u.up_at:
        return u.new_build
    return n.build


def rollback_at(n: FakeNode, t: float) -> str | None:
    """The rollback partition's build of node `n` at time `t`."""
    u = n.upgrade
    if u and u.up_at is not None and t >= u.up_at:
        return n.build
    return n.rollback_build


def boot_at(n: FakeNode, t: float) -> float:
    """When node `n` last booted, as seen at time `t`."""
    u = n.upgrade
    if u and u.up_at is not None and t >= u.up_at:
        return u.up_at
    return n.boot_at


def running(n: FakeNode, t: float) -> bool:
    """A scheduled upgrade that has not finished yet."""
    u = n.upgrade
    return u is not None and (u.joined_at is None or t < u.joined_at)


@dataclass
class Fault:
    """`count` more calls of `method` (on `node`, or any node) answer HTTP `status`."""

    method: str
    status: int
    count: int = 1
    node: str | None = None


_PKG_VERSION_RE = re.compile(r"(\d+\.\d+R\d+(?:\.\d+)?)", re.IGNORECASE)


def spread(total: int, nodes: list[str]) -> dict[str, int]:
    """Spread `total` sessions over the nodes (the first ones get the remainder)."""
    q, r = divmod(max(0, total), len(nodes))
    return {n: q + (1 if i < r else 0) for i, n in enumerate(nodes)}


def version_in(file_name: str) -> str | None:
    m = _PKG_VERSION_RE.search(file_name)
    return m.group(1) if m else None
