"""The upgrade plan preflight shows (dry runs post it to Slack), and the wording it uses."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.config.inventory import Cluster, Firmware

if TYPE_CHECKING:
    from jobs.procedures.spec import Procedure

DOWNTIME = "20-30 min"
CLIENT_REMINDER = (
    "Upgrade Odyssey Access Client / Pulse client installations to the matching version "
    "first: clients upgrade themselves on their next connection."
)


def fmt_duration(seconds: float) -> str:
    """`42 s`, `7 min`, `1 h 05 min`."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    m = s // 60
    if m < 60:
        return f"{m} min"
    return f"{m // 60} h {m % 60:02d} min"


def fmt_time(epoch: float) -> str:
    """`10:14:05 UTC`."""
    return time.strftime("%H:%M:%S UTC", time.gmtime(epoch))


@dataclass(frozen=True)
class PlanFacts:
    """What the plan's step notes are written from."""

    cluster: Cluster
    node: str  # the acting node, "?" when unknown
    package: Firmware | None
    backup_folder: Path
    settle_seconds: float


def backup_note(f: PlanFacts) -> str:
    return f"from {f.node} to {f.backup_folder}"


def logins_note(f: PlanFacts) -> str:
    return "through the VIP" if f.cluster.vip else f"on {f.node}"


def install_note(f: PlanFacts) -> str:
    return f"{f.package.file.name} on {f.node}" if f.package else "no package"


def settle_note(f: PlanFacts) -> str:
    return f"{fmt_duration(f.settle_seconds)} after the last node rejoined"


def reboot_note(f: PlanFacts) -> str:
    cluster, node = f.cluster, f.node
    if cluster.mode == "active-passive":
        other = next((n for n in cluster.node_names if n != node), "?")
        return f"{node} reboots first (VIP moves to {other} and back), then {other}"
    if cluster.mode == "active-active":
        return f"{node} first, then the other {len(cluster.nodes) - 1} one after the other"
    return "one reboot"


def make_plan(
    procedure: Procedure,
    cluster: Cluster,
    target: str,
    package: Firmware | None,
    acting_node: str | None,
    backup_folder: Path,
    settle_seconds: float,
    sessions: int | None,
) -> dict[str, Any]:
    """A JSON-able plan of the whole procedure for this cluster."""
    facts = PlanFacts(cluster, acting_node or "?", package, backup_folder, settle_seconds)
    steps = []
    for spec in procedure.rows:
        row: dict[str, Any] = {
            "step": spec.step.value,
            "title": spec.title,
            "note": spec.note(facts) if spec.note else "",
        }
        if spec.manual in cluster.manual:
            row["note"] = (row["note"] + "; operator-assisted").lstrip("; ")
        steps.append(row)
    return {
        "cluster": cluster.name,
        "mode": cluster.mode,
        "target": target,
        "package": (
            {"file": package.file.name, "sha256": package.sha256} if package else None
        ),
        "acting_node": acting_node,
        "backup_dir": str(backup_folder),
        "gates": [spec.title for spec in procedure.rows if spec.gate],
        "downtime": DOWNTIME,
        "sessions": sessions,
        "manual": sorted(cluster.manual),
        "window": cluster.window.text if cluster.window else None,
        "steps": steps,
    }
