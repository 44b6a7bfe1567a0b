"""The `Appliance` protocol the steps talk to, its value types and its errors.

The real implementation is the httpx client (`jobs/appliance/client.py`); tests use an in-memory
fake. Every method addresses one node by name, or the cluster VIP with `VIP`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from jobs.appliance.config_tree import ConfigTree, TreeLimits

VIP = "<vip>"  # target name meaning "through the cluster VIP"

ExportKind = Literal["system", "user"]

# Status words of the admin console (PPS-API.md). A node is in the cluster when it is
# enabled and its status is one of IN_CLUSTER_STATUSES.
STATUS_LEADER = "Leader"
STATUS_ENABLED = "Enabled"
STATUS_TRANSITIONING = "Enabled, Transitioning"
STATUS_UNREACHABLE = "Enabled, Unreachable"
STATUS_DISABLED = "Disabled"
IN_CLUSTER_STATUSES: frozenset[str] = frozenset({STATUS_LEADER, STATUS_ENABLED})


@dataclass(frozen=True)
class SystemInfo:
    """`GET system/system-information`, reduced to what the procedure needs."""

    host_name: str
    build: str
    rollback_build: str | None = None


@dataclass(frozen=True)
class MemberStatus:
    """One row of `cluster-member-status`."""

    name: str
    enabled: bool
    status: str
    notes: str = ""

    @property
    def in_cluster(self) -> bool:
        return self.enabled and self.status in IN_CLUSTER_STATUSES


@dataclass(frozen=True)
class Overview:
    """`GET system/status/overview`: cluster members (empty when standalone) and uptime."""

    members: tuple[MemberStatus, ...] = field(default_factory=tuple)
    uptime_seconds: float = 0.0

    def member(self, name: str) -> MemberStatus | None:
        """The row for node `name`; appliances may report member names in another case."""
        key = name.casefold()
        return next((m for m in self.members if m.name.casefold() == key), None)


@dataclass(frozen=True)
class ActiveUsers:
    """`GET system/active-users`: session count and whether user logins are enabled."""

    sessions: int
    login_permission: bool


class ApplianceError(Exception):
    """Base of appliance failures. Messages never contain secrets."""

    def __init__(self, node: str, message: str) -> None:
        super().__init__(f"{node}: {message}")
        self.node = node
        self.message = message


class Unreachable(ApplianceError):
    """Connection refused or reset, or a timeout: the node is not answering."""


class AuthFailed(ApplianceError):
    """Credentials refused (after one re-authentication)."""


class Unsupported(ApplianceError):
    """An [assumed] write (or the rollback) answered 404/405/501: switch the step to
    operator-assisted."""


class Rejected(ApplianceError):
    """The appliance answered a 4xx/5xx other than the above (for example 422 on install)."""

    def __init__(self, node: str, status: int, message: str) -> None:
        super().__init__(node, f"HTTP {status}: {message}")
        self.status = status


class Appliance(Protocol):
    """What the steps need from one cluster's appliances."""

    async def system_info(self, node: str) -> SystemInfo: ...

    async def overview(self, node: str) -> Overview: ...

    async def active_users(self, node: str) -> ActiveUsers: ...

    async def set_login_permission(self, node: str, enabled: bool) -> None:
        """Disable/Enable All Users (`PUT active-users`). No read-back: callers verify."""
        ...

    async def export_config(self, node: str, kind: ExportKind) -> bytes:
        """Binary configuration export, decoded. Raises `Rejected` on an empty export."""
        ...

    async def install(self, node: str, package: Path) -> None:
        """Upload and install now. Returns once the appliance accepted it (202/200)."""
        ...

    async def rollback(self, node: str) -> None:
        """Boot the rollback partition (`POST maintenance`). Returns once accepted (202/200)."""

    async def config_tree(self, node: str, limits: TreeLimits) -> ConfigTree:
        """Read-only walk of the configuration tree within `limits` (drift check).

        Raises when the root cannot be read; subtrees it could not read are listed."""
        ...

    async def aclose(self) -> None: ...
