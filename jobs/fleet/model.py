"""What a fleet poll read from one cluster, and the marks computed from it (pure).

A `ClusterReading` is stored as JSON (`Keys.fleet`) and read back by the bot for the App
Home tab and `/pps clusters`. Everything in it came from an appliance: renderers escape it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from jobs.appliance.versions import VersionError, compare, parse_version

UNREACHABLE = "unreachable"  # a node's `error` when it did not answer (refused, reset, timeout)


@dataclass(frozen=True)
class NodeReading:
    """One node: its builds and cluster status, or why it could not be read."""

    name: str
    build: str | None = None
    rollback_build: str | None = None
    status: str | None = None  # the console's status word, or "standalone"
    error: str | None = None  # UNREACHABLE or the appliance's message (never a secret)

    @property
    def ok(self) -> bool:
        return self.error is None and self.build is not None


@dataclass(frozen=True)
class ClusterReading:
    """One poll of one cluster, with the time it was read."""

    cluster: str
    read_at: float
    nodes: tuple[NodeReading, ...] = field(default_factory=tuple)
    login_permission: bool | None = None  # cluster-wide (DESIGN §4.7); None: not read
    sessions: int | None = None
    error: str | None = None  # why logins and sessions could not be read
    seconds: float = 0.0  # how long the poll took

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, raw: str) -> ClusterReading:
        """Parse a stored reading; raises ValueError on anything malformed."""
        try:
            d: dict[str, Any] = json.loads(raw)
            nodes = tuple(
                NodeReading(
                    name=str(n["name"]),
                    build=_opt_str(n.get("build")),
                    rollback_build=_opt_str(n.get("rollback_build")),
                    status=_opt_str(n.get("status")),
                    error=_opt_str(n.get("error")),
                )
                for n in d.get("nodes") or []
            )
            permission = d.get("login_permission")
            sessions = d.get("sessions")
            return cls(
                cluster=str(d["cluster"]),
                read_at=float(d["read_at"]),
                nodes=nodes,
                login_permission=permission if isinstance(permission, bool) else None,
                sessions=int(sessions) if isinstance(sessions, int) else None,
                error=_opt_str(d.get("error")),
                seconds=float(d.get("seconds") or 0.0),
            )
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
            raise ValueError(f"malformed fleet reading: {exc!r}") from None

    def signature(self) -> str:
        """What a viewer would notice changing: builds, status, errors, logins (not the
        session count nor the time, which change on every poll)."""
        nodes = [(n.name, n.build, n.rollback_build, n.status, n.error) for n in self.nodes]
        return json.dumps([nodes, self.login_permission, self.error is None])

    def node(self, name: str) -> NodeReading | None:
        return next((n for n in self.nodes if n.name == name), None)


def _opt_str(v: Any) -> str | None:
    return None if v is None else str(v)


def builds_disagree(reading: ClusterReading) -> bool:
    """Do the nodes that answered run different releases (or builds of one release)?"""
    seen: set[tuple[tuple[int, int, int, int], int | None] | str] = set()
    for n in reading.nodes:
        if n.ok and n.build is not None:
            try:
                v = parse_version(n.build)
                seen.add((v.key, v.build))
            except VersionError:
                seen.add(n.build.strip())
    return len(seen) > 1


def nodes_behind(reading: ClusterReading, newest: str | None) -> list[str]:
    """Nodes that answered with a build older than `newest` (the catalogue's newest)."""
    if newest is None:
        return []
    behind = []
    for n in reading.nodes:
        if not n.ok or n.build is None:
            continue
        try:
            if compare(n.build, newest) < 0:
                behind.append(n.name)
        except VersionError:
            continue  # a build we cannot read is shown as it is, not judged
    return behind


def unreachable_nodes(reading: ClusterReading) -> list[str]:
    return [n.name for n in reading.nodes if n.error is not None]
