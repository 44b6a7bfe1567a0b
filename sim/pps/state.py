"""State of the simulated clusters: nodes, knobs, faults, sessions, api keys, write log.

Pure data and rules, no sockets: the HTTP apps (`sim/pps/app.py`) read and change it,
the upgrade sequence (`sim/pps/upgrade.py`) moves nodes through their phases, and the
listeners (`sim/pps/listener.py`) make a node's port refuse connections while it reboots.
This module imports nothing from the product: it is an independent reading of PPS-API.md.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from sim.pps.config_tree import build_config

Mode = Literal["standalone", "active-passive", "active-active"]
MODES = ("standalone", "active-passive", "active-active")

# A node's life: `up`; `installing` (still serving); `rebooting` (port closed);
# `rejoining` (serving again, not yet back in the cluster); `down` (never came back or
# powered off by a test: port closed).
Phase = Literal["up", "installing", "rebooting", "rejoining", "down"]
SERVING: frozenset[str] = frozenset({"up", "installing", "rejoining"})

# Status words of the admin console (PPS-API.md).
LEADER = "Leader"
ENABLED = "Enabled"
TRANSITIONING = "Enabled, Transitioning"
UNREACHABLE = "Enabled, Unreachable"
DISABLED = "Disabled"

_VERSION_RE = re.compile(r"^\s*(\d+)\.(\d+)\s*R\s*(\d+)(?:\.(\d+))?")
LEGACY_AUTH_REMOVED = (22, 7, 2, 1)  # GET /api/v1/auth is gone from 22.7R2.1 on


def release_key(build: str) -> tuple[int, int, int, int]:
    """(major, minor, release, patch) of a build string; zeros when unparsable."""
    m = _VERSION_RE.match(build)
    if not m:
        return (0, 0, 0, 0)
    return (int(m[1]), int(m[2]), int(m[3]), int(m[4] or 0))


@dataclass
class Knobs:
    """Per-cluster timings (seconds, accelerated) and behaviour switches."""

    install_seconds: float = 0.3
    reboot_seconds: float = 0.5
    rejoin_seconds: float = 0.2
    key_ttl_seconds: float | None = None  # None: keys live until reboot or expire_keys
    legacy_auth: bool | None = None  # None: served below 22.7R2.1, 404 from it on
    realm_auth: bool = True  # False: realm_auth answers 404 (an old appliance)
    upgrade_changes_config: bool = False  # a new build changes a setting, drops an object
    upload_seconds: float = 0.0  # an install's package upload takes this long (a slow WAN)


@dataclass
class Faults:
    """Per-cluster faults; node lists name the nodes concerned."""

    never_returns: list[str] = field(default_factory=list)  # reboot and stay down
    install_status: int | None = None  # e.g. 422 or 500: installs are refused
    flap_503: int = 0  # answer 503 this many times, then once normally, repeating
    slow_seconds: float = 0.0  # delay before every answer
    slow_nodes: list[str] = field(default_factory=list)  # empty: all nodes are slow
    assumed_404: bool = False  # the [assumed] writes answer 404
    empty_export: bool = False  # config exports answer an empty body
    drip_seconds: float = 0.0  # send every answer one byte at a time, this far apart...
    drip_nodes: list[str] = field(default_factory=list)  # ...on these nodes (empty: all)
    huge_reply_bytes: int = 0  # pad every JSON answer to a read (GET) to this many bytes
    install_lost: int = 0  # the next N installs are lost: connection reset, nothing starts
    install_proxy_status: int | None = None  # the install starts, but a proxy answers this
    rollback_status: int | None = None  # rollbacks answer this (422/500 refused, 404/405/501)
    config_unreadable: bool = False  # the configuration tree answers 500
    config_huge_objects: int = 0  # this many extra ~1 KiB roles in the configuration tree


def update_dataclass(obj: Any, changes: dict[str, Any], what: str) -> None:
    """Set fields of a Knobs/Faults from a dict; unknown names raise ValueError."""
    names = {f.name for f in fields(obj)}
    for key, value in changes.items():
        if key not in names:
            raise ValueError(f"unknown {what} {key!r} (known: {', '.join(sorted(names))})")
        setattr(obj, key, value)


@dataclass
class WriteEntry:
    """One write call a node received (whatever it answered)."""

    node: str
    call: str  # login_permission | install | export | rollback
    detail: str  # "false", "9.1R18 (build 29865)", "system_config", ...
    status: int
    via_vip: bool
    at: float  # when the answer was ready (epoch seconds)
    received_at: float = 0.0  # when the request arrived (epoch seconds; 0: not known)

    def as_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "call": self.call,
            "detail": self.detail,
            "status": self.status,
            "via_vip": self.via_vip,
            "at": self.at,
            "received_at": self.received_at,
        }


@dataclass
class SimNode:
    """One appliance."""

    name: str
    build: str
    rollback_build: str | None = None
    port: int = 0  # fixed port, or 0 until the listener picked one
    enabled: bool = True  # False: an admin disabled it in the cluster ("Disabled")
    phase: Phase = "up"
    boot_at: float = field(default_factory=time.monotonic)
    keys: dict[str, float] = field(default_factory=dict)  # api key -> issued (monotonic)
    requests: int = 0  # requests seen since boot, drives flap_503
    calls: dict[str, int] = field(default_factory=dict)  # "GET /api/v1/..." -> count
    logins: int = 0  # api keys issued
    url: str = ""

    @property
    def serving(self) -> bool:
        return self.phase in SERVING

    def uptime(self) -> float:
        return max(0.0, time.monotonic() - self.boot_at)


@dataclass
class SimCluster:
    """A standalone appliance or a cluster, with its cluster-wide replicated state."""

    name: str
    mode: Mode
    nodes: list[SimNode]
    username: str
    password: str
    realm: str = "Admin Users"
    knobs: Knobs = field(default_factory=Knobs)
    faults: Faults = field(default_factory=Faults)
    login_permission: bool = True  # cluster-wide (replicated configuration)
    sessions: list[dict[str, str]] = field(default_factory=list)
    vip_port: int | None = None  # A/P: the VIP listener's port (0 until picked)
    vip_url: str = ""
    preferred_active: str = ""  # A/P: the node the VIP serves when it can
    vip_holder: str | None = None
    upgrading: bool = False
    upgrade_target: str | None = None
    log: list[WriteEntry] = field(default_factory=list)
    events: list[tuple[float, str]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)  # replicated: every node serves it
    config_migrated: bool = False  # `upgrade_changes_config` has happened

    def __post_init__(self) -> None:
        if not self.config:
            self.config = build_config(self.name, self.mode, [n.name for n in self.nodes])
        if not self.preferred_active and self.nodes:
            self.preferred_active = self.nodes[0].name
        if self.mode == "active-passive":
            self.vip_holder = self.preferred_active

    # -- lookups ------------------------------------------------------------------

    def node(self, name: str) -> SimNode:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def event(self, text: str) -> None:
        self.events.append((time.time(), text))

    # -- VIP (active/passive) -------------------------------------------------------

    def refresh_vip(self) -> bool:
        """Move the VIP per KB12940: to the passive while the active is away, back after
        the active rejoined. Returns True when the holder changed."""
        if self.mode != "active-passive":
            return False
        pref = self.node(self.preferred_active)
        holder = self.node(self.vip_holder) if self.vip_holder else None
        if pref.phase in ("up", "installing"):
            new: SimNode | None = pref
        elif holder is not None and holder.serving:
            new = holder
        else:
            up = [n for n in self.nodes if n.phase == "up"]
            new = up[0] if up else next((n for n in self.nodes if n.serving), None)
        new_name = new.name if new else None
        if new_name == self.vip_holder:
            return False
        self.event(f"vip: {self.vip_holder or 'nobody'} -> {new_name or 'nobody'}")
        self.vip_holder = new_name
        return True

    def install_refusal(self, n: SimNode, what: str = "install") -> str | None:
        """Why `n` cannot start an install (or a rollback) now (answered as 422), or None."""
        if self.upgrading:
            return "an upgrade is already in progress"
        if self.mode == "active-passive" and n.name != self.vip_holder:
            return f"this node is passive; {what} on the active node"
        if n.phase != "up":
            return f"node is {n.phase}"
        return None

    # -- cluster status -------------------------------------------------------------

    def leader(self) -> str | None:
        joined = [n for n in self.nodes if n.enabled and n.phase in ("up", "installing")]
        if self.mode == "active-passive" and self.vip_holder:
            holder = self.node(self.vip_holder)
            if holder in joined:
                return holder.name
        return joined[0].name if joined else None

    def status_word(self, n: SimNode) -> str:
        if not n.enabled:
            return DISABLED
        if n.phase in ("rebooting", "down"):
            return UNREACHABLE
        if n.phase in ("installing", "rejoining"):
            return TRANSITIONING
        return LEADER if n.name == self.leader() else ENABLED

    def member_status(self) -> list[dict[str, Any]]:
        """`cluster-member-status` (empty for a standalone appliance)."""
        if self.mode == "standalone":
            return []
        return [
            {
                "name": n.name,
                "enabled": n.enabled,
                "statuscode": self.status_word(n),
                "notes": "",
            }
            for n in self.nodes
        ]

    # -- authentication ---------------------------------------------------------------

    def legacy_auth_enabled(self, n: SimNode) -> bool:
        if self.knobs.legacy_auth is not None:
            return self.knobs.legacy_auth
        return release_key(n.build) < LEGACY_AUTH_REMOVED

    def issue_key(self, n: SimNode) -> str:
        key = secrets.token_urlsafe(24)
        n.keys[key] = time.monotonic()
        n.logins += 1
        return key

    def key_valid(self, n: SimNode, key: str) -> bool:
        issued = n.keys.get(key)
        if issued is None:
            return False
        ttl = self.knobs.key_ttl_seconds
        if ttl is not None and time.monotonic() - issued > ttl:
            del n.keys[key]
            return False
        return True

    def expire_keys(self) -> None:
        for n in self.nodes:
            n.keys.clear()
        self.event("api keys expired")

    # -- sessions -------------------------------------------------------------------

    def set_sessions(self, count: int) -> None:
        """Generate `count` active-user records spread over the nodes."""
        self.sessions = [
            {
                "active-user-name": f"user{i:05d}",
                "authentication-realm": "Users",
                "login-node": self.nodes[i % len(self.nodes)].name,
                "session-id": f"sid{i:08x}",
                "user-sign-in-time": "2026/11/25 10:01:02",
                "endpoint-ip-address": f"10.{100 + i // 65000}.{(i // 250) % 256}.{i % 250 + 1}",
                "agent-type": "Pulse Secure",
            }
            for i in range(count)
        ]

    def drop_sessions_of(self, node: str) -> None:
        """A rebooting node loses the sessions it carried."""
        self.sessions = [s for s in self.sessions if s["login-node"] != node]

    # -- write log ------------------------------------------------------------------

    def record_write(
        self, node: str, call: str, detail: str, status: int, via_vip: bool,
        received_at: float = 0.0,
    ) -> None:
        self.log.append(WriteEntry(node, call, detail, status, via_vip, time.time(), received_at))

    def write_counts(self, status: int | None = None) -> dict[str, dict[str, int]]:
        """{node: {call: count}} of received writes (only those answered `status`, if given)."""
        out: dict[str, dict[str, int]] = {n.name: {} for n in self.nodes}
        for e in self.log:
            if status is not None and e.status != status:
                continue
            per = out.setdefault(e.node, {})
            per[e.call] = per.get(e.call, 0) + 1
        return out

    # -- snapshots ------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything a test may want to read, as JSON-able data."""
        return {
            "name": self.name,
            "mode": self.mode,
            "login_permission": self.login_permission,
            "sessions": len(self.sessions),
            "upgrading": self.upgrading,
            "upgrade_target": self.upgrade_target,
            "config_migrated": self.config_migrated,
            "vip_url": self.vip_url or None,
            "vip_holder": self.vip_holder,
            "preferred_active": self.preferred_active if self.mode == "active-passive" else None,
            "knobs": {f.name: getattr(self.knobs, f.name) for f in fields(self.knobs)},
            "faults": {f.name: getattr(self.faults, f.name) for f in fields(self.faults)},
            "nodes": [
                {
                    "name": n.name,
                    "url": n.url,
                    "port": n.port,
                    "phase": n.phase,
                    "enabled": n.enabled,
                    "build": n.build,
                    "rollback_build": n.rollback_build,
                    "uptime": round(n.uptime(), 3),
                    "status": self.status_word(n) if self.mode != "standalone" else None,
                    "logins": n.logins,
                    "calls": dict(n.calls),
                }
                for n in self.nodes
            ],
            "events": [{"at": t, "text": s} for t, s in self.events[-200:]],
        }
