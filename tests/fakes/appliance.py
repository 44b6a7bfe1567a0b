"""`FakeCluster`: an in-memory PPS cluster implementing `jobs.appliance.protocol.Appliance`.

It follows PPS-API.md "Cluster behaviour during an upgrade" on an injected clock: the node
that receives the install installs, reboots (unreachable) and rejoins on the new build; an
active/passive VIP moves to the passive while the active is away and returns; the other
nodes then follow one after the other. Every moment is a function of `clock.now()` and a
schedule of absolute times, so `snapshot()` / `restore()` carry it across processes.
Used by unit tests (with `FakeClock`) and by the engine's real-process crash test.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, NoReturn

from jobs.appliance.config_tree import ConfigTree, TreeLimits
from jobs.appliance.protocol import (
    STATUS_DISABLED,
    STATUS_ENABLED,
    STATUS_LEADER,
    STATUS_TRANSITIONING,
    STATUS_UNREACHABLE,
    VIP,
    ActiveUsers,
    ExportKind,
    MemberStatus,
    Overview,
    Rejected,
    SystemInfo,
    Unreachable,
    Unsupported,
)
from jobs.config.clock import Clock
from jobs.config.inventory import Cluster
from tests.fakes.config_tree import default_config, read_tree
from tests.fakes.node import (
    DOWN,
    INSTALLING,
    REBOOTING,
    REJOINING,
    SERVING,
    FakeNode,
    Fault,
    Upgrade,
    boot_at,
    build_at,
    phase,
    rollback_at,
    running,
    spread,
    version_in,
)

MODES = ("standalone", "active-passive", "active-active")
WRITE_METHODS = ("set_login_permission", "install", "export_config", "rollback")

class FakeCluster:
    """One cluster's appliances in memory. See the module docstring."""

    def __init__(
        self,
        clock: Clock,
        mode: str,
        nodes: list[str],
        *,
        build: str = "9.1R17 (build 27583)",
        rollback_build: str | None = "9.1R16 (build 26213)",
        packages: dict[str, str] | None = None,
        install_seconds: float = 60.0,
        reboot_seconds: float = 120.0,
        rejoin_seconds: float = 30.0,
        sessions: int | dict[str, int] = 0,
        uptime_seconds: float = 30 * 86400.0,
        active: str | None = None,
        login_permission: bool = True,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        if not nodes:
            raise ValueError("a cluster needs at least one node")
        self.clock = clock
        self.mode = mode
        now = clock.now()
        per_node = sessions if isinstance(sessions, dict) else spread(sessions, nodes)
        self.nodes: dict[str, FakeNode] = {
            n: FakeNode(n, build, rollback_build, now - uptime_seconds, per_node.get(n, 0))
            for n in nodes
        }
        self.active = active or nodes[0]
        self.packages = dict(packages or {})  # package file name -> build it installs
        self.install_seconds = install_seconds
        self.reboot_seconds = reboot_seconds
        self.rejoin_seconds = rejoin_seconds
        self.login_permission = login_permission
        self.unsupported: set[str] = set()  # methods answering 404 ([assumed] writes)
        self.empty_export = False
        self.vip_down = False  # fault: the VIP answers nothing while the nodes are fine
        self.faults: list[Fault] = []
        self.lost_answers: list[Fault] = []  # the call acts, then its answer is lost
        self.counters: dict[str, int] = {}  # "method@node" -> calls received
        self.calls: list[dict[str, Any]] = []  # side-effect calls, in order
        self.config: dict[str, Any] = default_config(nodes)  # href -> JSON (replicated)

    @classmethod
    def for_cluster(cls, cluster: Cluster, clock: Clock, **kw: Any) -> FakeCluster:
        """A fake shaped like an inventory cluster (mode and node names)."""
        return cls(clock, cluster.mode, cluster.node_names, **kw)

    # -- faults and knobs --------------------------------------------------------------
    def fail_next(
        self, method: str, status: int = 500, count: int = 1, node: str | None = None
    ) -> None:
        """The next `count` calls of `method` answer HTTP `status` (Rejected)."""
        self.faults.append(Fault(method, status, count, node))

    def lose_answer(self, method: str, status: int = 0, count: int = 1) -> None:
        """The next `count` calls of `method` act, then their answer is lost: HTTP `status`
        (a proxy's 502/504 while the upgrade starts) or, with 0, a reset connection."""
        self.lost_answers.append(Fault(method, status, count))

    def set_down(self, node: str, down: bool = True) -> None:
        """Force a node unreachable (or reachable again)."""
        self.nodes[node].down = down

    def set_enabled(self, node: str, enabled: bool) -> None:
        """Enable or disable a node in the cluster (status `Disabled`)."""
        self.nodes[node].enabled = enabled

    def never_return(self, node: str) -> None:
        """Once `node` reboots it never comes back."""
        self.nodes[node].never_returns = True

    # -- what an operator does in the admin console (not API calls: not counted) -------
    def console_set_login_permission(self, enabled: bool) -> None:
        """System > Status > Active Users > Enable / Disable All Users."""
        self.login_permission = enabled

    def console_install(self, node: str, package: Path) -> None:
        """Maintenance > System > Upgrade/Downgrade > Install Now on `node`."""
        self._settle()
        new_build = self.packages.get(package.name) or version_in(package.name)
        if new_build is None:
            raise ValueError(f"{package.name} is not a firmware package")
        self._schedule(node, new_build, self.clock.now())

    def console_rollback(self, node: str) -> None:
        """Maintenance > System > Platform > Rollback on `node`."""
        self._settle()
        self._schedule(node, None, self.clock.now())

    # -- inspection ---------------------------------------------------------------------
    def count(self, method: str, node: str | None = None) -> int:
        """Calls of `method` received (on one node, or in total)."""
        if node is not None:
            return self.counters.get(f"{method}@{node}", 0)
        return sum(v for k, v in self.counters.items() if k.split("@", 1)[0] == method)

    def phase(self, node: str) -> str:
        """up | installing | rebooting | rejoining | down, now."""
        self._settle()
        return phase(self.nodes[node], self.clock.now())

    def build_of(self, node: str) -> str:
        self._settle()
        return build_at(self.nodes[node], self.clock.now())

    def vip_holder(self) -> str | None:
        """The node answering on the VIP now, or None."""
        self._settle()
        return self._vip_holder(self.clock.now())

    def upgrade_done_at(self) -> float | None:
        """When the last scheduled node rejoins (None: none scheduled, or never)."""
        ends = [n.upgrade.joined_at for n in self.nodes.values() if n.upgrade]
        if not ends or any(e is None for e in ends):
            return None
        return max(e for e in ends if e is not None)

    # -- the Appliance protocol -----------------------------------------------------------
    async def system_info(self, node: str) -> SystemInfo:
        n = self._enter("system_info", node)
        now = self.clock.now()
        return SystemInfo(n.name, build_at(n, now), rollback_at(n, now))

    async def overview(self, node: str) -> Overview:
        n = self._enter("overview", node)
        now = self.clock.now()
        members = () if self.mode == "standalone" else self._members(now)
        return Overview(members=members, uptime_seconds=max(0.0, now - boot_at(n, now)))

    async def active_users(self, node: str) -> ActiveUsers:
        self._enter("active_users", node)
        total = sum(n.sessions for n in self.nodes.values())
        return ActiveUsers(sessions=total, login_permission=self.login_permission)

    async def set_login_permission(self, node: str, enabled: bool) -> None:
        self._enter("set_login_permission", node, write=f"enabled={enabled}")
        self.login_permission = enabled

    async def export_config(self, node: str, kind: ExportKind) -> bytes:
        n = self._enter("export_config", node, write=kind)
        if self.empty_export:
            self._refuse(node, 200, "empty configuration export")
        line = f"{kind} configuration of {n.name} on {build_at(n, self.clock.now())}\n"
        return line.encode() * 8

    async def install(self, node: str, package: Path) -> None:
        n = self._enter("install", node, write=package.name)
        now = self.clock.now()
        if any(running(m, now) for m in self.nodes.values()):
            self._refuse(node, 422, "an upgrade is already in progress")
        if self.mode == "active-passive" and n.name != self._vip_holder(now):
            self._refuse(node, 422, f"not on this node: {n.name} is the passive node")
        new_build = self.packages.get(package.name) or version_in(package.name)
        if new_build is None:
            self._refuse(node, 422, f"{package.name} is not a firmware package")
        self._schedule(n.name, new_build, now)
        self._lose_answer("install", node)

    async def rollback(self, node: str) -> None:
        """Boot the rollback partition; the other nodes follow as in an upgrade."""
        n = self._enter("rollback", node, write="rollback")
        now = self.clock.now()
        if any(running(m, now) for m in self.nodes.values()):
            self._refuse(node, 422, "an upgrade is already in progress")
        if self.mode == "active-passive" and n.name != self._vip_holder(now):
            self._refuse(node, 422, f"not on this node: {n.name} is the passive node")
        if rollback_at(n, now) is None:
            self._refuse(node, 422, "no rollback partition")
        self._schedule(n.name, None, now)

    async def config_tree(self, node: str, limits: TreeLimits) -> ConfigTree:
        self._enter("config_tree", node)
        return await read_tree(self.config, node, limits, self.clock)

    async def aclose(self) -> None:
        return None

    # -- persistence ----------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The complete state, JSON-able, with every timer as an absolute time."""
        self._settle()
        return {
            "mode": self.mode,
            "nodes": [asdict(n) for n in self.nodes.values()],
            "active": self.active,
            "packages": dict(self.packages),
            "install_seconds": self.install_seconds,
            "reboot_seconds": self.reboot_seconds,
            "rejoin_seconds": self.rejoin_seconds,
            "login_permission": self.login_permission,
            "unsupported": sorted(self.unsupported),
            "empty_export": self.empty_export,
            "vip_down": self.vip_down,
            "faults": [asdict(f) for f in self.faults],
            "lost_answers": [asdict(f) for f in self.lost_answers],
            "counters": dict(self.counters),
            "calls": [dict(c) for c in self.calls],
        }

    @classmethod
    def restore(cls, d: dict[str, Any], clock: Clock) -> FakeCluster:
        """Rebuild from `snapshot()` output on `clock`."""
        raw_nodes = d["nodes"]
        fc = cls(clock, d["mode"], [rn["name"] for rn in raw_nodes])
        fc.nodes = {}
        for rn in raw_nodes:
            up = rn.get("upgrade")
            fc.nodes[rn["name"]] = FakeNode(
                **{**rn, "upgrade": Upgrade(**up) if up else None}
            )
        fc.active = d["active"]
        fc.packages = dict(d["packages"])
        fc.install_seconds = float(d["install_seconds"])
        fc.reboot_seconds = float(d["reboot_seconds"])
        fc.rejoin_seconds = float(d["rejoin_seconds"])
        fc.login_permission = bool(d["login_permission"])
        fc.unsupported = set(d["unsupported"])
        fc.empty_export = bool(d["empty_export"])
        fc.vip_down = bool(d.get("vip_down", False))
        fc.faults = [Fault(**f) for f in d["faults"]]
        fc.lost_answers = [Fault(**f) for f in d.get("lost_answers", [])]
        fc.counters = dict(d["counters"])
        fc.calls = [dict(c) for c in d["calls"]]
        return fc

    # -- internals ------------------------------------------------------------------------
    def _enter(self, method: str, target: str, write: str | None = None) -> FakeNode:
        """Count the call, resolve the target, apply reachability and faults."""
        self._settle()
        now = self.clock.now()
        key = f"{method}@{target}"
        self.counters[key] = self.counters.get(key, 0) + 1
        entry: dict[str, Any] = {"at": now, "method": method, "node": target, "arg": write}
        if write is not None:
            self.calls.append(entry)
        try:
            if target == VIP:
                holder = None if self.vip_down else self._vip_holder(now)
                if holder is None:
                    raise Unreachable(VIP, "connection refused")
                n = self.nodes[holder]
            elif target in self.nodes:
                n = self.nodes[target]
                if phase(n, now) not in (*SERVING, REJOINING):
                    raise Unreachable(target, "connection refused")
            else:
                raise Unreachable(target, "unknown host")
            for f in self.faults:
                if f.method == method and f.count > 0 and f.node in (None, target):
                    f.count -= 1
                    raise Rejected(target, f.status, "internal error" if f.status >= 500
                                   else "refused")
            if method in self.unsupported:
                raise Unsupported(target, "HTTP 404: no such resource")
        except Exception as exc:
            entry["outcome"] = type(exc).__name__
            raise
        entry["outcome"] = "ok"
        return n

    def _lose_answer(self, method: str, node: str) -> None:
        for f in self.lost_answers:
            if f.method == method and f.count > 0:
                f.count -= 1
                self.calls[-1]["outcome"] = "answer lost"
                if f.status:
                    raise Rejected(node, f.status, "Bad Gateway")
                raise Unreachable(node, "connection reset or closed by the node")

    def _refuse(self, node: str, status: int, message: str) -> NoReturn:
        """Answer the side-effect call just logged with an HTTP error."""
        self.calls[-1]["outcome"] = "Rejected"
        raise Rejected(node, status, message)

    def _schedule(self, first: str, new_build: str | None, now: float) -> None:
        """Lay out the upgrade of every node, starting with `first` (`new_build` None: a
        rollback, each node to its rollback partition's build)."""
        names = list(self.nodes)
        order = [first] + [x for x in names if x != first]
        start: float | None = now
        for name in order:
            n = self.nodes[name]
            if start is None:
                break  # the previous node never came back: the cluster pushes no further
            build = new_build if new_build is not None else n.rollback_build
            if build is None:
                break  # no rollback partition: the rollback stops here
            reboot_at = start + self.install_seconds
            up_at = None if n.never_returns else reboot_at + self.reboot_seconds
            joined_at = None if up_at is None else up_at + self.rejoin_seconds
            n.upgrade = Upgrade(build, start, reboot_at, up_at, joined_at)
            start = joined_at

    def _settle(self) -> None:
        """Fold finished upgrades and cut sessions of rebooted nodes (time only moves on)."""
        now = self.clock.now()
        for n in self.nodes.values():
            u = n.upgrade
            if u is None:
                continue
            if now >= u.reboot_at:
                n.sessions = 0
            if u.up_at is not None and u.joined_at is not None and now >= u.joined_at:
                n.rollback_build, n.build = n.build, u.new_build
                n.boot_at = u.up_at
                n.upgrade = None

    def _vip_holder(self, t: float) -> str | None:
        prefer = [self.active] + [x for x in self.nodes if x != self.active]
        for wanted in (SERVING, (REJOINING,)):
            for name in prefer:
                if phase(self.nodes[name], t) in wanted:
                    return name
        return None

    def _members(self, t: float) -> tuple[MemberStatus, ...]:
        leader = self._vip_holder(t)
        out = []
        for n in self.nodes.values():
            ph = phase(n, t)
            if not n.enabled:
                out.append(MemberStatus(n.name, False, STATUS_DISABLED))
            elif ph in (REBOOTING, DOWN):
                out.append(MemberStatus(n.name, True, STATUS_UNREACHABLE))
            elif ph in (INSTALLING, REJOINING):
                out.append(MemberStatus(n.name, True, STATUS_TRANSITIONING))
            else:
                word = STATUS_LEADER if n.name == leader else STATUS_ENABLED
                out.append(MemberStatus(n.name, True, word))
        return tuple(out)


__all__ = ["FakeCluster", "FakeNode", "Fault", "Upgrade"]
