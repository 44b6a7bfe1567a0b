"""PPS cluster simulator: several clusters in one process, one port per node (+ VIP).

Run it with `ppsbot simulator --config sim.yml` (see `sim.example.yml`), or in-process:

    sim = Simulator(load_config("sim.yml"))      # or Simulator(SimConfig([...]))
    await sim.start()                            # ports 0 get free ports
    sim.node_url("cluster-east", "east-a"); sim.vip_url("cluster-east"); sim.control_url
    sim.cluster("cluster-east")          # the live state: knobs, faults, write log, events
    await sim.power(...); await sim.reboot(...); await sim.console_install(...)
    await sim.console_rollback(...)
    sim.inventory(firmware); sim.credentials_env()   # an inventory pointing at it
    await sim.stop()

How reachability is simulated: every node has its own listening socket. While a node
reboots (or is powered off, or never comes back) its socket is closed, so connecting is
refused, and the connections it had are reset (SO_LINGER 0, then abort). The A/P VIP has
its own socket that answers as whichever node holds the VIP. The control API
(`sim/pps/control.py`) listens on its own port and is always up.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sys
import time
from typing import Any

from sim.pps.app import node_app
from sim.pps.config import SimConfig, load_config
from sim.pps.control import control_app
from sim.pps.listener import Listener
from sim.pps.packages import build_string
from sim.pps.state import SimCluster, SimNode, update_dataclass
from sim.pps.upgrade import reboot, run_rollback, run_upgrade


def env_name(cluster: str, what: str) -> str:
    """`cluster-east`, `USERNAME` → `PPS_SIM_CLUSTER_EAST_USERNAME`."""
    return "PPS_SIM_" + re.sub(r"[^A-Z0-9]+", "_", cluster.upper()).strip("_") + "_" + what


class Simulator:
    """The in-process simulator: start, read URLs, change state, stop."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.clusters: dict[str, SimCluster] = {c.name: c for c in config.clusters}
        self._nodes: dict[tuple[str, str], Listener] = {}
        self._vips: dict[str, Listener] = {}
        self._control: Listener | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()

    # -- lifecycle ------------------------------------------------------------------

    def _listener(self, app: Any, port: int) -> Listener:
        cfg = self.config
        return Listener(app, cfg.host, port, cfg.tls_cert, cfg.tls_key)

    async def start(self) -> None:
        """Open the control port, every node port and every VIP port."""
        self._control = Listener(control_app(self), self.config.host, self.config.control_port)
        await self._control.open()
        for c in self.clusters.values():
            for n in c.nodes:
                lst = self._listener(node_app(self._fixed(c, n), self._start_task), n.port)
                self._nodes[(c.name, n.name)] = lst
                await lst.open()
                n.port, n.url = lst.port, lst.url
            if c.mode == "active-passive":
                vip = self._listener(
                    node_app(self._vip(c), self._start_task, via_vip=True), c.vip_port or 0
                )
                self._vips[c.name] = vip
                await vip.open()
                c.vip_port, c.vip_url = vip.port, vip.url
            await self.sync(c)

    async def stop(self) -> None:
        """Cancel running upgrades and close every port."""
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await t
        for lst in [*self._nodes.values(), *self._vips.values()]:
            await lst.close()
        if self._control is not None:
            await self._control.close()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    # -- addresses ------------------------------------------------------------------

    @property
    def control_url(self) -> str:
        assert self._control is not None, "start() first"
        return self._control.url

    def node_url(self, cluster: str, node: str) -> str:
        return self._nodes[(cluster, node)].url

    def vip_url(self, cluster: str) -> str:
        return self._vips[cluster].url

    def cluster(self, name: str) -> SimCluster:
        return self.clusters[name]

    # -- wiring used by the apps and the upgrade sequence ---------------------------

    def _fixed(self, c: SimCluster, n: SimNode) -> Any:
        def resolve() -> tuple[SimCluster, SimNode] | None:
            return (c, n) if n.serving else None

        return resolve

    def _vip(self, c: SimCluster) -> Any:
        def resolve() -> tuple[SimCluster, SimNode] | None:
            if c.vip_holder is None:
                return None
            n = c.node(c.vip_holder)
            return (c, n) if n.serving else None

        return resolve

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _start_task(self, c: SimCluster, n: SimNode, target: str | None) -> None:
        if target is None:
            self._spawn(run_rollback(c, n, self))
        else:
            self._spawn(run_upgrade(c, n, target, self))

    async def sync(self, cluster: SimCluster) -> None:
        """Open or close ports to match the nodes' phases and the VIP holder."""
        async with self._lock:
            cluster.refresh_vip()
            for n in cluster.nodes:
                lst = self._nodes.get((cluster.name, n.name))
                if lst is None:
                    continue
                if n.serving:
                    await lst.open()
                else:
                    await lst.close()
            vip = self._vips.get(cluster.name)
            if vip is not None:
                holder = cluster.node(cluster.vip_holder) if cluster.vip_holder else None
                if holder is not None and holder.serving:
                    await vip.open()
                else:
                    await vip.close()

    # -- controls (also behind the control API) --------------------------------------

    async def configure(self, cluster: str, changes: dict[str, Any]) -> None:
        """Change knobs, faults, login permission, session count or the preferred active."""
        c = self.clusters[cluster]
        unknown = set(changes) - {
            "knobs",
            "faults",
            "login_permission",
            "sessions",
            "preferred_active",
        }
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        update_dataclass(c.knobs, changes.get("knobs") or {}, "knob")
        update_dataclass(c.faults, changes.get("faults") or {}, "fault")
        if "login_permission" in changes:
            c.login_permission = bool(changes["login_permission"])
        if "sessions" in changes:
            c.set_sessions(int(changes["sessions"]))
        if "preferred_active" in changes:
            c.node(str(changes["preferred_active"]))
            c.preferred_active = str(changes["preferred_active"])
        await self.sync(c)

    async def set_node(self, cluster: str, node: str, changes: dict[str, Any]) -> None:
        """Set a node's build, rollback build or cluster-enabled flag."""
        c = self.clusters[cluster]
        n = c.node(node)
        unknown = set(changes) - {"build", "rollback_build", "enabled"}
        if unknown:
            raise ValueError(f"unknown node setting(s): {', '.join(sorted(unknown))}")
        if "build" in changes:
            n.build = str(changes["build"])
        if "rollback_build" in changes:
            rb = changes["rollback_build"]
            n.rollback_build = str(rb) if rb else None
        if "enabled" in changes:
            n.enabled = bool(changes["enabled"])

    async def reboot(self, cluster: str, node: str) -> None:
        """Reboot a node now on its current build (runs in the background)."""
        c = self.clusters[cluster]
        n = c.node(node)
        if not n.serving:
            raise ValueError(f"{node} is {n.phase}")
        self._spawn(reboot(c, n, self))
        await asyncio.sleep(0)

    async def power(self, cluster: str, node: str, on: bool) -> None:
        """Power a node off (port closed, state kept) or on (boots, rejoins at once)."""
        c = self.clusters[cluster]
        n = c.node(node)
        if on and n.phase == "down":
            n.phase, n.boot_at, n.requests = "up", time.monotonic(), 0
            c.event(f"{node}: powered on")
        elif not on:
            n.phase = "down"
            n.keys.clear()
            c.drop_sessions_of(node)
            c.event(f"{node}: powered off")
        await self.sync(c)

    async def console_install(self, cluster: str, node: str, version: str, build: int) -> None:
        """What an operator does in the admin console (Install Now), bypassing the API.

        Same rules as the API (active node only, one upgrade at a time); not in the write
        log, which records API calls only.
        """
        c = self.clusters[cluster]
        n = c.node(node)
        refusal = c.install_refusal(n)
        if refusal is not None:
            raise ValueError(refusal)
        target = build_string(version, build)
        c.upgrading, c.upgrade_target = True, target
        c.event(f"{node}: console install of {target}")
        self._spawn(run_upgrade(c, n, target, self, grace=0))
        await asyncio.sleep(0)  # the task marks the node installing before any await

    async def console_rollback(self, cluster: str, node: str) -> None:
        """An operator's Rollback in the admin console (Maintenance > System > Platform),
        bypassing the API: same rules as the API call; not in the write log."""
        c = self.clusters[cluster]
        n = c.node(node)
        refusal = c.install_refusal(n, "roll back")
        if n.rollback_build is None:
            refusal = "no rollback partition"
        if refusal is not None:
            raise ValueError(refusal)
        c.upgrading, c.upgrade_target = True, n.rollback_build
        c.event(f"{node}: console rollback to {n.rollback_build}")
        self._spawn(run_rollback(c, n, self, grace=0))
        await asyncio.sleep(0)

    # -- helpers for tests and the demo ----------------------------------------------

    def credentials_env(self) -> dict[str, str]:
        """Environment variables holding each cluster's admin credentials."""
        env: dict[str, str] = {}
        for c in self.clusters.values():
            env[env_name(c.name, "USERNAME")] = c.username
            env[env_name(c.name, "PASSWORD")] = c.password
        return env

    def inventory(self, firmware: list[dict[str, str]]) -> dict[str, Any]:
        """An inventory (DESIGN §3 layout) pointing at this running simulator."""
        clusters: dict[str, Any] = {}
        for c in self.clusters.values():
            entry: dict[str, Any] = {
                "mode": c.mode,
                "nodes": [{"name": n.name, "url": n.url} for n in c.nodes],
                "username_env": env_name(c.name, "USERNAME"),
                "password_env": env_name(c.name, "PASSWORD"),
                "realm": c.realm,
            }
            if c.vip_url:
                entry["vip"] = c.vip_url
            clusters[c.name] = entry
        return {"clusters": clusters, "firmware": firmware}

    def describe(self) -> list[str]:
        """Lines naming every port, for the console."""
        lines = [f"control  {self.control_url}/_sim/clusters"]
        for c in self.clusters.values():
            for n in c.nodes:
                lines.append(f"{c.name:<16} {c.mode:<15} {n.name:<12} {n.url}  {n.build}")
            if c.vip_url:
                lines.append(f"{c.name:<16} {c.mode:<15} {'VIP':<12} {c.vip_url}")
        return lines


async def _serve(config: SimConfig) -> None:
    sim = Simulator(config)
    await sim.start()
    print("PPS simulator running (Ctrl-C stops):", flush=True)
    for line in sim.describe():
        print("  " + line, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await sim.stop()
        print("PPS simulator stopped.", flush=True)


def main(config_path: str, host: str | None = None) -> int:
    """`ppsbot simulator --config sim.yml [--host H]`: serve until Ctrl-C; exit code."""
    try:
        config = load_config(config_path)
    except (OSError, ValueError) as exc:
        print(f"simulator config {config_path}: {exc}", file=sys.stderr)
        return 2
    if host:
        config.host = host
    try:
        asyncio.run(_serve(config))
    except OSError as exc:
        print(f"simulator: cannot listen ({exc})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0
