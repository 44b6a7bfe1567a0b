"""The simulator's YAML configuration (see `sim.example.yml`) → `SimCluster` objects."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sim.pps.state import MODES, Faults, Knobs, SimCluster, SimNode, update_dataclass

DEFAULT_BUILD = "9.1R17 (build 27583)"
DEFAULT_ROLLBACK = "9.1R16 (build 26213)"
DEFAULT_UPTIME = 3 * 86400.0  # nodes start as if they had been up for three days


@dataclass
class SimConfig:
    """Parsed configuration: clusters plus where and how to listen."""

    clusters: list[SimCluster]
    host: str = "127.0.0.1"
    control_port: int = 0
    tls_cert: str | None = None
    tls_key: str | None = None


def _port(value: Any, where: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise ValueError(f"{where}: port must be an integer 0-65535 (0 = any free port)")
    return value


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected a mapping")
    return value


def parse_cluster(name: str, raw: dict[str, Any], defaults: dict[str, Any]) -> SimCluster:
    """One cluster entry; `defaults` (the top-level `defaults:`) fills what it leaves out."""
    where = f"clusters.{name}"
    merged = {**defaults, **raw}
    mode = merged.get("mode")
    if mode not in MODES:
        raise ValueError(f"{where}: mode must be one of {', '.join(MODES)}")
    raw_nodes = merged.get("nodes")
    if not isinstance(raw_nodes, list) or not raw_nodes:
        raise ValueError(f"{where}: nodes must be a non-empty list")
    if mode == "standalone" and len(raw_nodes) != 1:
        raise ValueError(f"{where}: standalone has exactly one node")
    if mode == "active-passive" and len(raw_nodes) != 2:
        raise ValueError(f"{where}: active-passive has exactly two nodes")
    build = str(merged.get("build") or DEFAULT_BUILD)
    rollback = merged.get("rollback_build", DEFAULT_ROLLBACK)
    uptime = float(merged.get("uptime_seconds", DEFAULT_UPTIME))
    nodes: list[SimNode] = []
    for i, rn in enumerate(raw_nodes):
        rn = {"name": rn} if isinstance(rn, str) else _mapping(rn, f"{where}.nodes[{i}]")
        if not rn.get("name"):
            raise ValueError(f"{where}.nodes[{i}]: needs a name")
        if any(n.name == str(rn["name"]) for n in nodes):
            raise ValueError(f"{where}.nodes[{i}]: duplicate node name {rn['name']!r}")
        node_rollback = rn.get("rollback_build", rollback)
        nodes.append(
            SimNode(
                name=str(rn["name"]),
                build=str(rn.get("build") or build),
                rollback_build=str(node_rollback) if node_rollback else None,
                port=_port(rn.get("port"), f"{where}.nodes[{i}]"),
                enabled=bool(rn.get("enabled", True)),
                boot_at=time.monotonic() - float(rn.get("uptime_seconds", uptime)),
            )
        )
    knobs, faults = Knobs(), Faults()
    update_dataclass(knobs, _mapping(defaults.get("knobs"), "defaults.knobs"), "knob")
    update_dataclass(knobs, _mapping(raw.get("knobs"), f"{where}.knobs"), "knob")
    update_dataclass(faults, _mapping(defaults.get("faults"), "defaults.faults"), "fault")
    update_dataclass(faults, _mapping(raw.get("faults"), f"{where}.faults"), "fault")
    cluster = SimCluster(
        name=name,
        mode=mode,
        nodes=nodes,
        username=str(merged.get("username", "admin")),
        password=str(merged.get("password", "sim-password")),
        realm=str(merged.get("realm", "Admin Users")),
        knobs=knobs,
        faults=faults,
        login_permission=bool(merged.get("login_permission", True)),
        vip_port=_port(merged.get("vip_port"), f"{where}.vip_port")
        if mode == "active-passive"
        else None,
        preferred_active=str(merged.get("active") or nodes[0].name),
    )
    if cluster.preferred_active not in [n.name for n in nodes]:
        raise ValueError(f"{where}: active {cluster.preferred_active!r} is not one of its nodes")
    cluster.vip_holder = cluster.preferred_active if mode == "active-passive" else None
    cluster.set_sessions(int(merged.get("sessions", 0)))
    return cluster


def parse_config(data: Any, base: Path) -> SimConfig:
    """Validate parsed YAML; raise ValueError with the first mistake found."""
    root = _mapping(data, "simulator config")
    raw_clusters = _mapping(root.get("clusters"), "clusters")
    if not raw_clusters:
        raise ValueError("clusters: at least one cluster is needed")
    defaults = _mapping(root.get("defaults"), "defaults")
    clusters = [
        parse_cluster(str(n), _mapping(r, f"clusters.{n}"), defaults)
        for n, r in raw_clusters.items()
    ]
    tls = _mapping(root.get("tls"), "tls")
    cert = key = None
    if tls:
        if not tls.get("cert") or not tls.get("key"):
            raise ValueError("tls: needs 'cert' and 'key' (PEM files)")
        cert, key = (
            str(p if Path(p).is_absolute() else base / p) for p in (tls["cert"], tls["key"])
        )
    return SimConfig(
        clusters=clusters,
        host=str(root.get("host", "127.0.0.1")),
        control_port=_port(root.get("control_port"), "control_port"),
        tls_cert=cert,
        tls_key=key,
    )


def load_config(path: str | Path) -> SimConfig:
    """Read a simulator YAML file (TLS file paths relative to its folder)."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"not valid YAML ({exc})") from None
    return parse_config(data, p.resolve().parent)
