"""`--profile DIR`: sample the deployment's processes with py-spy while the benchmarks run.

    python -m benchmarks.run --profile /tmp/prof          # record, then summarise
    python -m benchmarks.profile /tmp/prof/worker-1.txt    # summarise one recording again

py-spy (a sampling profiler that reads a running process from outside, so the product
carries no profiling code) records each process's stacks in the collapsed format
("frame;frame;frame count" per line). The summary lists the functions that hold the
most samples: inclusive (on the stack) and self (on top), with idle time (the event loop
waiting in `select`/`epoll`) counted apart, so the figures are shares of busy time.
py-spy is the `bench` extra (`pip install -e '.[bench]'`). Sampling costs CPU (about 5% of
a core per process at the default 50 Hz, 15-20% at 200 Hz): read a profiled run's figures
as a profile's, and take the table from a run without `--profile`.
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

# Frames where a process is waiting, not working.
IDLE = re.compile(r"\b(select|poll|epoll_wait|_run_once|wait|sleep)\b \((selectors|asyncio|"
                  r"threading|base_events)")
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]+)(?::(?P<line>\d+))?\)$")


class Recorder:
    """One `py-spy record` per process; `stop()` makes each write its file."""

    def __init__(self, out: Path, rate: int = 50) -> None:
        self.out = out
        self.rate = rate
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    @staticmethod
    def available() -> str | None:
        return shutil.which("py-spy") or _venv_pyspy()

    def start(self, pids: Mapping[str, int]) -> None:
        exe = self.available()
        if exe is None:
            raise SystemExit("--profile needs py-spy: pip install -e '.[bench]'")
        self.out.mkdir(parents=True, exist_ok=True)
        for name, pid in pids.items():
            self.procs[name] = subprocess.Popen(
                [exe, "record", "--pid", str(pid), "--rate", str(self.rate), "--format", "raw",
                 "--output", str(self.out / f"{name}.txt"), "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=(self.out / f"{name}.pyspy.log").open("wb"))

    def stop(self) -> list[Path]:
        for p in self.procs.values():
            p.send_signal(signal.SIGINT)
        for p in self.procs.values():
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
        return [self.out / f"{name}.txt" for name in self.procs]


def _venv_pyspy() -> str | None:
    cand = Path(sys.executable).with_name("py-spy")
    return str(cand) if cand.exists() else None


@dataclass
class Summary:
    """Sample counts of one recording."""

    total: int
    idle: int
    inclusive: Counter[str]
    own: Counter[str]

    @property
    def busy(self) -> int:
        return self.total - self.idle


def _short(frame: str) -> str:
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    path = m["file"]
    for marker in ("site-packages/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    else:
        parts = Path(path).parts
        path = "/".join(parts[-3:])
    return f"{m['func']} ({path})"


def summarise(lines: Iterable[str]) -> Summary:
    """Collapsed stacks -> per-function inclusive and self samples (lines ignored)."""
    total = idle = 0
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_short(f) for f in stack.split(";") if f and not f.startswith(("process ",
                                                                                 "thread "))]
        total += n
        if frames and IDLE.search(stack.split(";")[-1]):
            idle += n
            continue
        for f in set(frames):
            inclusive[f] += n
        if frames:
            own[frames[-1]] += n
    return Summary(total, idle, inclusive, own)


def report(path: Path, top: int = 25, only: str = "") -> str:
    """A text table of the top functions of one recording (`only`: a path filter)."""
    s = summarise(path.read_text(errors="replace").splitlines())
    out = [f"{path.name}: {s.total} samples, {s.busy} busy "
           f"({100 * s.busy / max(1, s.total):.0f}%)"]
    for title, counts in (("inclusive", s.inclusive), ("self", s.own)):
        out.append(f"  top {title} (% of busy samples):")
        rows = [(f, n) for f, n in counts.most_common() if only in f][:top]
        out += [f"    {100 * n / max(1, s.busy):5.1f}%  {f}" for f, n in rows]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks.profile", description=__doc__.splitlines()[0])
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--only", default="", help="keep functions whose name or path has this")
    a = p.parse_args(argv)
    for f in a.files:
        print(report(f, a.top, a.only))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
