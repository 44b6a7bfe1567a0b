"""The timeline of one fake PPS node: its state outside an upgrade, the upgrade scheduled
for it in absolute times, and what it is doing at any moment (pure functions of time), for
`tests.fakes.appliance.FakeCluster`."""

from __future__ import annotations

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
