"""Figures of a benchmark run: percentiles, one table row per figure, results.json.

A `Figure` is what the table prints: a name, the measured value, the baseline measured in
the same run (or None when the issue asks for an absolute figure), the target, the unit.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(q / 100 * len(s) + 0.5) - 1))
    return s[k]


@dataclass
class Figure:
    """One row of the table."""

    item: str  # the item of issue 12: "1" to "6"
    name: str
    value: float
    unit: str = "ms"
    baseline: float | None = None  # same run, same machine; None: an absolute figure
    target: str = ""
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline <= 0:
            return None
        return self.value / self.baseline


@dataclass
class Results:
    """Every figure of a run, the machine, and per-benchmark details for results.json."""

    size: str
    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)

    def add(self, figures: Iterable[Figure]) -> None:
        self.figures.extend(figures)

    def to_json(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "machine": self.machine,
            "figures": [{**asdict(f), "ratio": f.ratio} for f in self.figures],
            "details": self.details,
        }

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2, sort_keys=False) + "\n")


def _num(v: float | None, unit: str) -> str:
    if v is None:
        return "-"
    if unit in ("ms", "s") or abs(v) < 100:
        return f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"
    return f"{v:,.0f}"


def table(figures: Sequence[Figure]) -> str:
    """The figures as one Markdown table (what `make bench` prints and the README shows)."""
    rows = ["| # | figure | value | baseline | ratio | target | note |",
            "|---|---|---:|---:|---:|---|---|"]
    for f in figures:
        ratio = f"{f.ratio:.2f}x" if f.ratio is not None else "-"
        rows.append(f"| {f.item} | {f.name} | {_num(f.value, f.unit)} {f.unit} | "
                    f"{_num(f.baseline, f.unit)} | {ratio} | {f.target} | {f.note} |")
    return "\n".join(rows)


def machine(redis_version: str) -> dict[str, Any]:
    """What the figures were measured on."""
    try:
        cpu = next((ln.split(":", 1)[1].strip() for ln in
                    Path("/proc/cpuinfo").read_text().splitlines()
                    if ln.startswith("model name")), platform.processor())
    except OSError:
        cpu = platform.processor()
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=False).stdout.strip()
    except OSError:
        commit = ""
    return {"cores": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "redis": redis_version, "os": platform.platform(), "commit": commit}


def peak_rss_mb(pid: int) -> float:
    """Peak resident set size (VmHWM) of a live process, in MB; NaN if unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a live process has used so far, in seconds; NaN if unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores (/proc/stat)."""
    parts = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)  # idle + iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(parts) - idle) / tick, sum(parts) / tick
