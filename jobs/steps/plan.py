"""The upgrade plan preflight shows (dry runs post it to Slack), and the wording it uses."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from jobs.config.inventory import Cluster, Firmware
from jobs.rules.model import GATE_STEPS, MANUAL_STEP_NAMES, STEP_TITLES, STEPS, Step

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


def make_plan(
    cluster: Cluster,
    target: str,
    package: Firmware | None,
    acting_node: str | None,
    backup_folder: Path,
    settle_seconds: float,
    sessions: int | None,
) -> dict[str, Any]:
    """A JSON-able plan of the whole procedure for this cluster."""
    node = acting_node or "?"
    notes: dict[Step, str] = {
        Step.BACKUP: f"from {node} to {backup_folder}",
        Step.DISABLE_LOGINS: "through the VIP" if cluster.vip else f"on {node}",
        Step.INSTALL: f"{package.file.name} on {node}" if package else "no package",
        Step.WATCH_REBOOT: _reboot_note(cluster, node),
        Step.SETTLE: f"{fmt_duration(settle_seconds)} after the last node rejoined",
        Step.ENABLE_LOGINS: "through the VIP" if cluster.vip else f"on {node}",
    }
    steps = []
    for s in STEPS:
        row: dict[str, Any] = {"step": s.value, "title": STEP_TITLES[s], "note": notes.get(s, "")}
        if MANUAL_STEP_NAMES.get(s) in cluster.manual:
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
        "gates": [STEP_TITLES[s] for s in STEPS if s in GATE_STEPS],
        "downtime": DOWNTIME,
        "sessions": sessions,
        "manual": sorted(cluster.manual),
        "window": cluster.window.text if cluster.window else None,
        "steps": steps,
    }


def _reboot_note(cluster: Cluster, node: str) -> str:
    if cluster.mode == "active-passive":
        other = next((n for n in cluster.node_names if n != node), "?")
        return f"{node} reboots first (VIP moves to {other} and back), then {other}"
    if cluster.mode == "active-active":
        return f"{node} first, then the other {len(cluster.nodes) - 1} one after the other"
    return "one reboot"
