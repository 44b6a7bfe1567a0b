"""The PPS appliance: what the steps may ask of it, and the REST client that does it.

- `protocol`: the `Appliance` Protocol the steps depend on, the answers (`SystemInfo`,
  `Overview`, `ActiveUsers`), the errors (`Unreachable`, `AuthFailed`, `Unsupported`,
  `Rejected`) and the cluster status words.
- `client`: `PpsClient`, the `Appliance` over HTTP for one cluster (the calls of PPS-API.md).
- `transport`: sessions, authentication, retries, call deadlines and error mapping under
  the client.
- `reply`: answers read streamed with a size cap.
- `policy`: retry, timeout, answer-size and TLS policy as plain values.
- `parse`: checks and parses every answer (everything from outside is hostile).
- `config_tree`: the bounded, read-only walk of the configuration tree (drift check).
- `versions`: firmware version strings (`9.1R18`, `9.1R17.1 (build 27583)`) and comparisons.

Only the protocol is re-exported here; import `jobs.appliance.client` for the client.
"""

from jobs.appliance.protocol import (
    IN_CLUSTER_STATUSES,
    VIP,
    ActiveUsers,
    Appliance,
    ApplianceError,
    AuthFailed,
    ExportKind,
    MemberStatus,
    Overview,
    Rejected,
    SystemInfo,
    Unreachable,
    Unsupported,
)

__all__ = [
    "IN_CLUSTER_STATUSES",
    "VIP",
    "ActiveUsers",
    "Appliance",
    "ApplianceError",
    "AuthFailed",
    "ExportKind",
    "MemberStatus",
    "Overview",
    "Rejected",
    "SystemInfo",
    "Unreachable",
    "Unsupported",
]
