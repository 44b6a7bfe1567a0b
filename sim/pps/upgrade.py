"""Cluster behaviour during an upgrade or reboot (PPS-API.md, KB12940), in accelerated time.

Standalone: one install, one reboot. Active/passive: the active node installs and reboots,
the VIP moves to the passive, the active comes back on the new build and rejoins, the VIP
returns, then the passive installs, reboots and rejoins. Active/active: the node that was
asked goes first, the others follow one after the other. A node listed in
`faults.never_returns` reboots and stays down; the sequence stops there. With the knob
`upgrade_changes_config` the first node back on the new build migrates the configuration.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from sim.pps.config_tree import migrate
from sim.pps.state import SimCluster, SimNode

# Let the accepted answer (202/200) leave before the node starts closing its port.
ANSWER_GRACE_SECONDS = 0.05


class Network(Protocol):
    """Opens or closes the ports so they match the nodes' phases (and the VIP holder)."""

    async def sync(self, cluster: SimCluster) -> None: ...


async def reboot(
    cluster: SimCluster, node: SimNode, net: Network, new_build: str | None = None
) -> None:
    """Reboot `node` (onto `new_build` when given): port closed, back after the knobs."""
    node.phase = "rebooting"
    node.keys.clear()  # admin sessions, and so api keys, do not survive a reboot
    cluster.drop_sessions_of(node.name)
    cluster.event(f"{node.name}: rebooting")
    cluster.refresh_vip()
    await net.sync(cluster)
    await asyncio.sleep(cluster.knobs.reboot_seconds)
    if node.name in cluster.faults.never_returns:
        node.phase = "down"
        cluster.event(f"{node.name}: did not come back")
        await net.sync(cluster)
        return
    if new_build is not None:
        node.rollback_build, node.build = node.build, new_build
    node.boot_at = time.monotonic()
    node.requests = 0
    if cluster.mode == "standalone":
        node.phase = "up"
        cluster.event(f"{node.name}: up on {node.build}")
        await net.sync(cluster)
        return
    node.phase = "rejoining"
    cluster.event(f"{node.name}: up on {node.build}, rejoining")
    await net.sync(cluster)
    await asyncio.sleep(cluster.knobs.rejoin_seconds)
    node.phase = "up"
    cluster.event(f"{node.name}: rejoined")
    cluster.refresh_vip()
    await net.sync(cluster)


async def install_and_reboot(cluster: SimCluster, node: SimNode, target: str, net: Network) -> None:
    node.phase = "installing"
    cluster.event(f"{node.name}: installing {target}")
    await net.sync(cluster)
    await asyncio.sleep(cluster.knobs.install_seconds)
    await reboot(cluster, node, net, new_build=target)
    back = node.build == target  # else it never came back
    if back and cluster.knobs.upgrade_changes_config and not cluster.config_migrated:
        migrate(cluster.config)  # the new build's migration, replicated to the cluster
        cluster.config_migrated = True
        cluster.event(f"{node.name}: configuration migrated by {target}")


def upgrade_order(cluster: SimCluster, first: SimNode) -> list[SimNode]:
    """The node asked first, then (clusters) the others in inventory order."""
    if cluster.mode == "standalone":
        return [first]
    return [first, *(n for n in cluster.nodes if n is not first)]


async def run_upgrade(
    cluster: SimCluster,
    first: SimNode,
    target: str,
    net: Network,
    grace: float = ANSWER_GRACE_SECONDS,
) -> None:
    """The whole cluster upgrade started by an install accepted on `first`.

    `grace` lets an API answer leave first; a console install starts at once.
    """
    try:
        if grace > 0:
            await asyncio.sleep(grace)
        for node in upgrade_order(cluster, first):
            if node.phase != "up":
                cluster.event(f"{node.name}: not up ({node.phase}); upgrade stops")
                break
            await install_and_reboot(cluster, node, target, net)
            if node.phase != "up":
                cluster.event("upgrade stopped: a node did not come back")
                break
        else:
            cluster.event(f"upgrade to {target} finished")
    finally:
        cluster.upgrading = False


async def run_rollback(
    cluster: SimCluster, first: SimNode, net: Network, grace: float = ANSWER_GRACE_SECONDS
) -> None:
    """The whole cluster rollback started on `first`: each node boots its rollback
    partition (the partitions swap), the others following as in an upgrade (KB12940)."""
    try:
        if grace > 0:
            await asyncio.sleep(grace)
        for node in upgrade_order(cluster, first):
            if node.phase != "up":
                cluster.event(f"{node.name}: not up ({node.phase}); rollback stops")
                break
            if node.rollback_build is None:
                cluster.event(f"{node.name}: no rollback partition; rollback stops")
                break
            cluster.event(f"{node.name}: rolling back to {node.rollback_build}")
            await reboot(cluster, node, net, new_build=node.rollback_build)
            if node.phase != "up":
                cluster.event("rollback stopped: a node did not come back")
                break
        else:
            cluster.event("rollback finished")
    finally:
        cluster.upgrading = False
