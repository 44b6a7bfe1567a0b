"""`make bench`: every figure of issue 12 (items 1, 2, 3, 4, 5, 6) in one run, one table.

    python -m benchmarks.run [--tiny] [--clusters 200] [--variant-clusters 40] [--gates 100]
                             [--timers 1000] [--out benchmarks/results.json] [--only item1]

Four deployments (simulator, Slack stand-in, `ppsbot worker` x W, 1 `ppsbot bot`, real
Redis under a private key prefix each), one after the other:

- A, 2 workers: items 1 and 2 idle; item 3 (one job of each mode alone, then N at once);
  item 4, item 3's load on fewer clusters with one cluster's firmware upload throttled.
- D, 2 workers: items 1 and 2 measured while item 3's load (N at once) runs.
- B, 4 workers: item 3 alone and N at once again (does it scale?).
- C, 2 workers, the stand-in's rate limits on: item 5, item 3's load on as many clusters
  as item 4's.

Item 6 starts its own two workers. Every process is stopped and every key removed at the
end. `--tiny` is the size CI runs: there A also runs D's measurement, B divides by A's jobs
alone, and a deployment stops while the next one starts (see `TINY`); the default is the
size the README reports.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import redis

from benchmarks import (
    ack_concurrency,
    click_to_appliance,
    many_upgrades,
    slack_limits,
    timers_burst,
    under_load,
    upload_throttle,
)
from benchmarks.deployment import MODES, Deployment, Speed, Teardowns, deployment
from benchmarks.profile import Recorder
from benchmarks.stats import Figure, Results, machine, table


@dataclass(frozen=True)
class Size:
    """How much of everything one run does."""

    name: str
    clusters: int  # item 3, and its load while items 1 and 2 are measured
    gates: int  # item 2, idle
    timers: int  # item 6
    concurrency: tuple[int, ...] = (20, 100)
    rounds: int = 4  # item 1: interleaved rounds
    per_client: int = 5  # item 1: commands per client per round
    load_gates: int = 2  # item 2 under item 3's load
    load_rounds: int = 1  # item 1 under item 3's load: interleaved rounds
    scale_workers: int = 4  # item 3 again in deployment B with this many workers...
    scale_clusters: int = 0  # ...on this many clusters (0: `clusters`)
    variant_clusters: int = 3  # item 3 with one upload throttled, and with rate limits on
    upload_seconds: float = 3.0  # how long the throttled upload takes
    rate_limit: int = 1  # the stand-in's limit in C: calls/s per method (per channel)
    settle_fleet: bool = False  # measure only after the first fleet poll (about 30 s each)
    speed: Speed = field(default_factory=Speed)  # how long one upgrade takes
    timer_linger: float = 3.0  # item 6: how long to watch for a timer firing twice
    timer_lead: float = 2.0  # item 6: the timers are due this long after they are created
    timer_stop_grace: float = 15.0  # item 6: its workers are killed if slower to stop
    scale_alone: bool = True  # B times its own jobs alone (False: reuses A's, 2 workers)
    load_deployment: bool = True  # items 1 and 2 under load in D (False: in A, after item 4)
    drain_quiet: float = slack_limits.QUIET_SECONDS  # item 5: no call this long: drained
    # The next deployment starts while the last one stops (its workers end their blocking
    # read), and measures once it is gone.
    overlap_teardown: bool = False

    @property
    def scaled(self) -> int:
        return self.scale_clusters or self.clusters


RESULTS = Path("benchmarks/results.json")

# The CI smoke size: every item runs, on upgrades about three times as quick as the full
# size's (a reboot still lasts 4 polls); items 1 and 2 under load run in A, B's jobs alone
# are A's, and the waits that only let a phase end are shorter.
QUICK = Speed(settle=0.15, poll=0.05, install=0.1, reboot=0.2, rejoin=0.1)
TINY = Size("tiny", clusters=4, gates=2, timers=20, concurrency=(5, 20), rounds=1, per_client=2,
            upload_seconds=2.0, rate_limit=6, speed=QUICK, timer_linger=0.5, timer_lead=1.0,
            timer_stop_grace=1.0, scale_alone=False, load_deployment=False, drain_quiet=1.5,
            overlap_teardown=True)
FULL = Size("full", clusters=200, gates=100, timers=1000, load_gates=20, load_rounds=2,
            variant_clusters=40, upload_seconds=60.0, settle_fleet=True)


def _within(n: int) -> float:
    """How long a load of n upgrades may take before the run gives up waiting."""
    return 120 + 3 * n


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


def _step(res: Results, key: str, got: tuple[list[Figure], dict[str, Any]], t0: float) -> None:
    figs, det = got
    res.add(figs)
    res.details[key] = det
    print(f"{key} done ({time.monotonic() - t0:.0f} s)", file=sys.stderr)


def _up(res: Results, name: str, clusters: int, workers: int, t0: float, what: str = "") -> None:
    res.details.setdefault("deployments", {})[name] = {"clusters": clusters, "workers": workers,
                                                       "what": what}
    print(f"deployment {name} up: {clusters} clusters, {workers} workers, 1 bot{what} "
          f"({time.monotonic() - t0:.0f} s)", file=sys.stderr)


def run(size: Size, redis_url: str, out: Path | None, profile: Path | None = None,
        only: str | None = None) -> Results:
    """Run every benchmark at `size`; print the table; write results.json to `out`;
    with `profile`, record each phase's processes with py-spy under that folder.
    `only="item1"`: item 1 alone, in deployment A's inventory (a few minutes, not 17)."""
    res = Results(size=size.name, machine=machine(_redis_version(redis_url)))
    t0 = started = time.monotonic()
    n, v, m = size.clusters, size.variant_clusters, size.scaled
    settle = size.settle_fleet
    stopping = Teardowns()
    later = stopping if size.overlap_teardown else None

    def items_1_2_under_load(dep: Deployment, first: int) -> None:
        # Gates reserved on clusters first.., then the load on the next n.
        load = list(range(first + size.load_gates, first + size.load_gates + n))
        with _profiled(profile, "items1-2-under-load", dep.pids()):
            _step(res, "under_load", asyncio.run(under_load.measure(
                dep, first, size.load_gates, load, _within(n), size.concurrency,
                size.load_rounds, size.per_client, settle)), t0)

    try:
        # A: items 1 and 2 idle, item 3, item 4 (and, without D, items 1 and 2 under load).
        # Its clusters in the order they are used.
        main_first = size.gates  # 3 alone, then n at once
        throttled = main_first + len(MODES) + n
        # Item 4's load again with no upload throttled (run first): the same modes in turn.
        unthrottled = throttled + 1 + v
        unthrottled += (throttled - unthrottled) % len(MODES)
        total = loaded = unthrottled + 1 + v
        if not size.load_deployment:
            total += size.load_gates + n
        with deployment(total, workers=2, redis_url=redis_url, settle_fleet=settle,
                        speed=size.speed, later=later) as dep:
            _up(res, "A", total, 2, t0,
                "" if size.load_deployment else ", also items 1 and 2 under load")
            with _profiled(profile, "item1", dep.pids()):
                _step(res, "ack", asyncio.run(ack_concurrency.measure(
                    dep, size.concurrency, size.rounds, size.per_client)), t0)
            if only == "item1":
                return _finish(res, size, started, out)
            with _profiled(profile, "item2", dep.pids()):
                _step(res, "click_to_appliance", asyncio.run(click_to_appliance.measure(
                    dep, 0, size.gates)), t0)
            with _profiled(profile, "item3", dep.pids()):
                _step(res, "many_upgrades", asyncio.run(many_upgrades.measure(
                    dep, main_first, n, _within(n))), t0)
            with _profiled(profile, "item4", dep.pids()):
                _step(res, "upload_throttled", asyncio.run(upload_throttle.measure(
                    dep, throttled, list(range(throttled + 1, throttled + 1 + v)),
                    size.upload_seconds, res.details["many_upgrades"]["alone_seconds"],
                    _within(v), list(range(unthrottled, unthrottled + 1 + v)))), t0)
            if not size.load_deployment:
                items_1_2_under_load(dep, loaded)
        if size.load_deployment:
            # D: items 1 and 2 while item 3's load runs (gates reserved first, then the load).
            total = size.load_gates + n
            with deployment(total, workers=2, redis_url=redis_url,  # it waits for the fleet
                            speed=size.speed, later=later) as dep:
                stopping.wait()
                _up(res, "D", total, 2, t0)
                items_1_2_under_load(dep, 0)
        # B: item 3 again with more workers (its jobs alone again, or A's).
        alone = None if size.scale_alone else res.details["many_upgrades"]["alone_seconds"]
        total = m if alone is not None else len(MODES) + m
        with deployment(total, workers=size.scale_workers, redis_url=redis_url,
                        settle_fleet=settle, speed=size.speed, later=later) as dep:
            stopping.wait()
            _up(res, "B", total, size.scale_workers, t0,
                "" if alone is None else ", its jobs alone are A's")
            with _profiled(profile, "item3-scaled", dep.pids()):
                _step(res, "many_upgrades_scaled", asyncio.run(many_upgrades.measure_scaled(
                    dep, 0, m, _within(m), size.scale_workers, res.details["many_upgrades"],
                    alone)), t0)
        # C: item 3's load with the stand-in's rate limits on (item 5). No wait for the first
        # fleet poll: of so few clusters it is a second of work, next to figures in seconds.
        off = res.details["upload_throttled"]["unthrottled"]
        with deployment(v + 1, workers=2, redis_url=redis_url,
                        standin_rate_limit=size.rate_limit, speed=size.speed,
                        later=later) as dep:
            stopping.wait()
            _up(res, "C", v + 1, 2, t0, f", stand-in limit {size.rate_limit}/s")
            with _profiled(profile, "item5", dep.pids()):
                _step(res, "slack_limits", asyncio.run(slack_limits.measure(
                    dep, list(range(v + 1)), size.rate_limit, _within(v + 1),
                    off["gate_visible_ms"],
                    f"baseline: limits off, item 4's {off['clusters']} upgrades at once with "
                    "no upload throttled",
                    quiet=size.drain_quiet)), t0)
        _step(res, "timers", asyncio.run(timers_burst.measure(
            redis_url, size.timers, lead=size.timer_lead, linger=size.timer_linger,
            before=stopping.wait, stop_grace=size.timer_stop_grace)), t0)
    finally:
        stopping.wait()
    return _finish(res, size, started, out)


def _finish(res: Results, size: Size, started: float, out: Path | None) -> Results:
    res.details["wall_seconds"] = round(time.monotonic() - started, 1)
    res.figures.sort(key=lambda f: f.item)  # stable: each item's rows in the order measured
    m_ = res.machine
    print(f"\n{m_['cores']} cores ({m_['cpu']}), Python {m_['python']}, Redis {m_['redis']}, "
          f"size {size.name}, {res.details['wall_seconds']} s\n")
    print(table(res.figures))
    if out is not None:
        res.write(out)
        print(f"\nwritten: {out}")
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0])
    p.add_argument("--tiny", action="store_true", help="the CI size (about 45 s)")
    p.add_argument("--clusters", type=int, default=None,
                   help="item 3's clusters, also with 4 workers (full: 200)")
    p.add_argument("--variant-clusters", type=int, default=None,
                   help="item 3's clusters with one upload throttled and with rate limits on "
                        "(full: 40)")
    p.add_argument("--gates", type=int, default=None, help="item 2's gates (full: 100)")
    p.add_argument("--timers", type=int, default=None, help="item 6's timers (full: 1000)")
    p.add_argument("--out", type=Path, default=None,
                   help="where results.json goes (default benchmarks/results.json; with "
                        "--only, none unless given)")
    p.add_argument("--no-out", action="store_true", help="print only, write no results.json")
    p.add_argument("--profile", type=Path, default=None, metavar="DIR",
                   help="record every process with py-spy, one folder per item")
    p.add_argument("--only", choices=["item1"], default=None,
                   help="item1: the ack benchmark alone, in deployment A")
    a = p.parse_args(argv)
    size = TINY if a.tiny else FULL
    custom = {k: v for k, v in (("clusters", a.clusters), ("variant_clusters", a.variant_clusters),
                                ("gates", a.gates), ("timers", a.timers)) if v is not None}
    if custom:
        size = replace(size, name=f"{size.name}+custom", **custom)
    out = None if a.no_out else a.out or (None if a.only else RESULTS)
    run(size, os.environ.get("REDIS_URL", "redis://localhost:6379/0"), out, a.profile, a.only)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
