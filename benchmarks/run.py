"""`make bench`: every figure of issue 12 (items 1, 2, 3 reduced, 6) in one run, one table.

    python -m benchmarks.run [--tiny] [--clusters 40] [--gates 100] [--timers 1000]
                             [--out benchmarks/results.json]

One deployment (simulator, Slack stand-in, 2 `ppsbot worker`, 1 `ppsbot bot`, real Redis
under a private key prefix) serves items 1, 2 and 3 in that order; item 6 starts its own
two workers. Every process is stopped and every key removed at the end. `--tiny` is the
size CI runs (well under a minute); the default is the size the README reports.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import redis

from benchmarks import ack_concurrency, click_to_appliance, many_upgrades, timers_burst
from benchmarks.deployment import MODES, deployment
from benchmarks.profile import Recorder
from benchmarks.stats import Results, machine, table


@dataclass(frozen=True)
class Size:
    """How much of everything one run does."""

    name: str
    clusters: int  # item 3
    gates: int  # item 2
    timers: int  # item 6
    concurrency: tuple[int, ...] = (20, 100)
    rounds: int = 4  # item 1: interleaved rounds
    per_client: int = 5  # item 1: commands per client per round


TINY = Size("tiny", clusters=6, gates=5, timers=20, concurrency=(5, 20), rounds=2, per_client=2)
FULL = Size("full", clusters=40, gates=100, timers=1000)


def _redis_version(url: str) -> str:
    r = redis.Redis.from_url(url)
    try:
        return str(r.info("server").get("redis_version", "?"))
    finally:
        r.close()


@contextlib.contextmanager
def _profiled(profile: Path | None, phase: str, pids: Mapping[str, int]) -> Iterator[None]:
    """With `--profile`: py-spy records every process of the deployment during the phase."""
    if profile is None:
        yield
        return
    rec = Recorder(profile / phase)
    rec.start(pids)
    try:
        yield
    finally:
        rec.stop()
        print(f"profile of {phase}: {profile / phase}", file=sys.stderr)


def run(size: Size, redis_url: str, out: Path | None, profile: Path | None = None) -> Results:
    """Run every benchmark at `size`; print the table; write results.json to `out`;
    with `profile`, record each phase's processes with py-spy under that folder."""
    res = Results(size=size.name, machine=machine(_redis_version(redis_url)))
    started = time.monotonic()
    first_gate = 0
    first_load = first_gate + size.gates
    total = first_load + len(MODES) + size.clusters
    with deployment(total, workers=2, redis_url=redis_url) as dep:
        print(f"deployment up: {total} clusters, 2 workers, 1 bot", file=sys.stderr)
        with _profiled(profile, "item1", dep.pids()):
            figs, det = asyncio.run(ack_concurrency.measure(dep, size.concurrency, size.rounds,
                                                            size.per_client))
        res.add(figs)
        res.details["ack"] = det
        print("item 1 done", file=sys.stderr)
        with _profiled(profile, "item2", dep.pids()):
            figs, det = asyncio.run(click_to_appliance.measure(dep, first_gate, size.gates))
        res.add(figs)
        res.details["click_to_appliance"] = det
        print("item 2 done", file=sys.stderr)
        with _profiled(profile, "item3", dep.pids()):
            figs, det = asyncio.run(many_upgrades.measure(dep, first_load, size.clusters,
                                                          120 + 3 * size.clusters))
        res.add(figs)
        res.details["many_upgrades"] = det
        print("item 3 done", file=sys.stderr)
    figs, det = asyncio.run(timers_burst.measure(redis_url, size.timers))
    res.add(figs)
    res.details["timers"] = det
    res.details["wall_seconds"] = round(time.monotonic() - started, 1)
    m = res.machine
    print(f"\n{m['cores']} cores ({m['cpu']}), Python {m['python']}, Redis {m['redis']}, "
          f"size {size.name}, {res.details['wall_seconds']} s\n")
    print(table(res.figures))
    if out is not None:
        res.write(out)
        print(f"\nwritten: {out}")
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0])
    p.add_argument("--tiny", action="store_true", help="the CI size (well under a minute)")
    p.add_argument("--clusters", type=int, default=None, help="item 3's clusters (full: 40)")
    p.add_argument("--gates", type=int, default=None, help="item 2's gates (full: 100)")
    p.add_argument("--timers", type=int, default=None, help="item 6's timers (full: 1000)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results.json"))
    p.add_argument("--no-out", action="store_true", help="print only, write no results.json")
    p.add_argument("--profile", type=Path, default=None, metavar="DIR",
                   help="record every process with py-spy, one folder per item")
    a = p.parse_args(argv)
    base = TINY if a.tiny else FULL
    size = Size(base.name, a.clusters or base.clusters, a.gates or base.gates,
                a.timers or base.timers, base.concurrency, base.rounds, base.per_client)
    if (a.clusters, a.gates, a.timers) != (None, None, None):
        size = Size(f"{base.name}+custom", size.clusters, size.gates, size.timers,
                    size.concurrency, size.rounds, size.per_client)
    run(size, os.environ.get("REDIS_URL", "redis://localhost:6379/0"),
        None if a.no_out else a.out, a.profile)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
