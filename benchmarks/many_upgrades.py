"""Item 3: N clusters upgraded at once by the deployment's workers and 1 bot, every approval
clicked by a different user as soon as its message appears.

First one cluster of each mode is upgraded alone (the baseline, same deployment); then N
upgrades are requested within a few seconds and every gate is approved as it appears.
Reported: median and max job duration over the same mode's job alone; peak RSS of each
process; appliance writes per cluster (exactly one disable, one install, one enable);
Slack calls by method and per job, and calls made before a Retry-After ran out; Redis
memory per finished job (MEMORY USAGE of the deployment's keys / finished jobs); and the
delay between a gate opening and its message being visible.

`load` is that load phase on its own, reused by the other runs of item 3 (items 1 and 2
under load, one upload throttled, the stand-in's rate limits on); `measure_scaled` is the
same measurement in a deployment with more workers, beside the 2-worker ratios.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from benchmarks.deployment import MODES, Deployment, cluster_name
from benchmarks.driver import Driver, Gate, make_driver
from benchmarks.stats import Figure, cpu_seconds, machine_cpu, peak_rss_mb, percentile

RSS_TARGET = "<= 150 MB"


@dataclass
class LoadRun:
    """One load phase: its jobs, how they ended and took, what Slack saw."""

    jobs: dict[str, int]  # job id -> cluster index
    states: dict[str, str]
    durations: dict[str, float]  # finished jobs: seconds from creation to finish
    wall: float  # first request -> every job finished (or the deadline)
    lag_ms: list[float]  # gate opened -> message visible, this run's gates
    calls: list[dict[str, Any]] = field(default_factory=list)  # Slack calls meanwhile
    cpu: dict[str, float] = field(default_factory=dict)  # process -> CPU seconds meanwhile
    busy: float = float("nan")  # the machine's CPU busy share meanwhile (0-1, all cores)

    def ratios(self, alone: dict[str, float], skip: frozenset[int] = frozenset()
               ) -> dict[str, float]:
        """Job id -> duration over its mode's job alone (clusters in `skip` left out)."""
        return {j: d / alone[MODES[self.jobs[j] % len(MODES)]] for j, d in self.durations.items()
                if self.jobs[j] not in skip}

    @property
    def succeeded(self) -> int:
        return sum(1 for s in self.states.values() if s == "succeeded")


async def _run(drv: Driver, indexes: list[int], within: float, spread: float, *,
               ignore: frozenset[str] = frozenset(), requested: asyncio.Event | None = None
               ) -> tuple[dict[str, int], dict[str, str]]:
    """Request upgrades of `indexes` (in that order) within `spread` seconds, approve every
    gate at once except those of jobs in `ignore`; set `requested` once every upgrade was
    requested; (job id -> cluster index, job id -> final state)."""
    stop = asyncio.Event()
    clicks: list[asyncio.Task[Any]] = []

    async def approve(g: Gate) -> None:
        if g.job_id not in ignore:
            clicks.append(asyncio.create_task(drv.click(g)))

    watcher = asyncio.create_task(drv.watch_gates(approve, stop))
    jobs: dict[str, int] = {}
    step = spread / max(1, len(indexes))

    async def one(k: int, i: int) -> None:
        await asyncio.sleep(k * step)
        jobs[await drv.request(i)] = i

    try:
        await asyncio.gather(*(one(k, i) for k, i in enumerate(indexes)))
        if requested is not None:
            requested.set()
        states = await drv.wait_finished(list(jobs), within)
    finally:
        stop.set()
        await watcher
        await asyncio.gather(*clicks, return_exceptions=True)
    return jobs, states


def spread_of(n: int) -> float:
    """Seconds over which n upgrades are requested (10 s for 200, as the issue says)."""
    return min(10.0, n * 0.05)


async def load(drv: Driver, indexes: list[int], within: float, *,
               ignore: frozenset[str] = frozenset(),
               requested: asyncio.Event | None = None) -> LoadRun:
    """Item 3's load phase on the clusters `indexes`."""
    dep = drv.dep
    gates_before = len(drv.gates)
    calls_before = dep.slack_call_count()
    pids = dep.pids()
    cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
    busy0, all0 = machine_cpu()
    t0 = time.monotonic()
    jobs, states = await _run(drv, indexes, within, spread_of(len(indexes)), ignore=ignore,
                              requested=requested)
    wall = time.monotonic() - t0
    busy1, all1 = machine_cpu()
    cpu = {name: cpu_seconds(pid) - cpu0[name] for name, pid in pids.items()}
    durations = await drv.durations(list(jobs))
    lag = [g.visible_at * 1000 - g.opened_ms for g in drv.gates[gates_before:]
           if g.job_id in jobs]
    return LoadRun(jobs, states, durations, wall, lag, dep.slack_calls(calls_before), cpu,
                   (busy1 - busy0) / max(1e-9, all1 - all0))


async def alone(drv: Driver, first: int, within: float) -> dict[str, float]:
    """Mode -> seconds of one upgrade alone, on clusters first..first+2 (one per mode)."""
    out: dict[str, float] = {}
    for i in range(first, first + len(MODES)):
        jobs, _states = await _run(drv, [i], within, 0)
        d = await drv.durations(list(jobs))
        out[MODES[i % len(MODES)]] = next(iter(d.values()), float("nan"))
    return out


def writes(dep: Deployment, indexes: list[int]) -> dict[str, Any]:
    """Per cluster: accepted disable, install and enable writes; clusters off (1, 1, 1)."""
    off: dict[str, tuple[int, int, int]] = {}
    with httpx.Client(timeout=30) as http:
        for i in indexes:
            name = cluster_name(i)
            log = http.get(f"{dep.control_url}/_sim/clusters/{name}/log").json()["entries"]
            ok = [e for e in log if 200 <= e["status"] < 300]
            got = (sum(e["call"] == "login_permission" and e["detail"] == "false" for e in ok),
                   sum(e["call"] == "install" for e in ok),
                   sum(e["call"] == "login_permission" and e["detail"] == "true" for e in ok))
            if got != (1, 1, 1):
                off[name] = got
    return {"clusters": len(indexes), "not_exactly_one_each": off}


async def _redis_bytes(drv: Driver) -> int:
    total = 0
    keys = [k async for k in drv.redis.scan_iter(match=drv.dep.prefix + "*", count=1000)]
    pipe = drv.redis.pipeline(transaction=False)
    for k in keys:
        pipe.memory_usage(k)
    for n in await pipe.execute():
        total += int(n or 0)
    return total


def summary(run: LoadRun, ratios: dict[str, float]) -> dict[str, Any]:
    """The details of a load run for results.json."""
    dur = list(run.durations.values())
    return {
        "clusters": len(run.jobs), "succeeded": run.succeeded,
        "states": dict(Counter(run.states.values())), "wall_seconds": run.wall,
        "duration_seconds": {"median": statistics.median(dur) if dur else float("nan"),
                             "max": max(dur, default=float("nan"))},
        "ratio": {"median": statistics.median(ratios.values()) if ratios else float("nan"),
                  "max": max(ratios.values(), default=float("nan"))},
        "gate_visible_ms": {"p50": percentile(run.lag_ms, 50), "p99": percentile(run.lag_ms, 99),
                            "max": max(run.lag_ms, default=float("nan"))},
        "slack_calls": len(run.calls),
        "slack_calls_by_method": dict(Counter(c["method"] for c in run.calls)),
        "slack_429": sum(1 for c in run.calls if c.get("status") == 429),
        "slack_early_calls": sum(1 for c in run.calls if c.get("early")),
        "machine_cpu_busy": run.busy, "cpu_seconds": run.cpu,
    }


def cpu_figure(run: LoadRun, suffix: str = "") -> Figure:
    """The machine's CPU busy share during the load, CPU seconds per job of each process."""
    jobs = max(1, len(run.jobs))
    return Figure("3", f"machine CPU busy during the load{suffix}", 100 * run.busy, "%", None,
                  "", f"{os.cpu_count()} cores; CPU s per job: " + ", ".join(
                      f"{k} {v / jobs:.2f}" for k, v in sorted(run.cpu.items())))


def _median(xs: dict[str, float]) -> float:
    return statistics.median(xs.values()) if xs else float("nan")


def _max(xs: dict[str, float]) -> float:
    return max(xs.values(), default=float("nan"))


def rss_figures(dep: Deployment, suffix: str = "", note: str = "") -> tuple[list[Figure],
                                                                           dict[str, float]]:
    """Peak RSS of every process of the deployment (so far), one row each."""
    rss = {name: peak_rss_mb(pid) for name, pid in dep.pids().items()}
    figs = [Figure("3", f"peak RSS {name}{suffix}", mb, "MB", None,
                   RSS_TARGET if name == "bot" or name.startswith("worker-") else "", note)
            for name, mb in sorted(rss.items())]
    return figs, rss


async def _alone_then_load(drv: Driver, first: int, n: int, within: float,
                           known: dict[str, float] | None = None
                           ) -> tuple[dict[str, float], list[int], LoadRun, dict[str, float]]:
    """One job of each mode alone (clusters first..first+2), then n at once after them:
    (alone durations, the load's cluster indexes, the load run, duration ratios). With
    `known` alone durations, none runs alone: the n start at `first`."""
    if known is None:
        base, first = await alone(drv, first, within), first + len(MODES)
    else:
        base = known
    indexes = list(range(first, first + n))
    run = await load(drv, indexes, within)
    return base, indexes, run, run.ratios(base)


async def measure(dep: Deployment, first: int, n: int, within: float
                  ) -> tuple[list[Figure], dict[str, Any]]:
    """Baseline clusters first..first+2 (one per mode), then n at once after them."""
    drv = make_driver(dep)
    try:
        base, indexes, run, ratios = await _alone_then_load(drv, first, n, within)
        calls = run.calls
        by_method = Counter(c["method"] for c in calls)
        early = sum(1 for c in calls if c.get("early"))
        rss_figs, rss = rss_figures(dep)
        redis_bytes = await _redis_bytes(drv)
        all_jobs = [k async for k in drv.redis.scan_iter(match=dep.prefix + "job:*", count=1000)]
        w = writes(dep, indexes)
        jobs = max(1, len(run.jobs))
        figs = [
            Figure("3", f"job duration median, {n} at once / alone", _median(ratios), "x", None,
                   "<= 1.10x", "per job over its mode's job alone; 2 workers"),
            Figure("3", f"job duration max, {n} at once / alone", _max(ratios), "x", None,
                   "<= 1.10x", ""),
            cpu_figure(run),
            Figure("3", "gate opened -> message visible p99", percentile(run.lag_ms, 99), "ms",
                   None, "", "Slack pacing share, reported apart"),
            *rss_figs,
            Figure("3", "clusters not written exactly 1 disable/1 install/1 enable",
                   len(w["not_exactly_one_each"]), "", None, "0", f"of {len(indexes)}"),
            Figure("3", "Slack calls per job", len(calls) / jobs, "", None, "",
                   ", ".join(f"{m} {c / jobs:.1f}" for m, c in by_method.most_common())),
            Figure("3", "Slack calls before Retry-After ran out", early, "", None, "0",
                   "stand-in rate limits off"),
            Figure("3", "Redis memory per finished job", redis_bytes / 1024 / max(1, len(
                all_jobs)), "KB", None, "", f"{len(all_jobs)} jobs under the prefix"),
        ]
        details = {**summary(run, ratios), "alone_seconds": base, "peak_rss_mb": rss,
                   "writes": w, "redis_bytes": redis_bytes, "jobs_under_prefix": len(all_jobs)}
        return figs, details
    finally:
        await drv.http.aclose()
        await drv.redis.aclose()


async def measure_scaled(dep: Deployment, first: int, n: int, within: float, workers: int,
                         before: dict[str, Any], known: dict[str, float] | None = None
                         ) -> tuple[list[Figure], dict[str, Any]]:
    """The same as `measure` in a deployment with `workers` workers: the duration ratios
    beside those of `before` (the 2-worker run's details) when it had as many clusters,
    and the peak RSS of every process. With `known` (the 2-worker run's alone durations),
    the ratios are over those and no job runs alone here."""
    drv = make_driver(dep)
    try:
        base, indexes, run, ratios = await _alone_then_load(drv, first, n, within, known)
        rss_figs, rss = rss_figures(dep, f", {workers} workers")
        same = before.get("clusters") == n
        prior = before.get("ratio", {}) if same else {}
        note = ("baseline: the same load on 2 workers (above)" if same else
                f"2 workers ran {before.get('clusters')} clusters: not comparable")
        if known is not None:
            note += "; alone: the 2-worker run's jobs"
        figs = [
            Figure("3", f"job duration median, {n} at once / alone, {workers} workers",
                   _median(ratios), "x", prior.get("median"), "<= 1.10x", note),
            Figure("3", f"job duration max, {n} at once / alone, {workers} workers",
                   _max(ratios), "x", prior.get("max"), "<= 1.10x", note),
            cpu_figure(run, f", {workers} workers"),
            *rss_figs,
        ]
        details = {**summary(run, ratios), "workers": workers, "alone_seconds": base,
                   "alone_from": "this deployment" if known is None else "2 workers",
                   "peak_rss_mb": rss, "writes": writes(dep, indexes)}
        return figs, details
    finally:
        await drv.http.aclose()
        await drv.redis.aclose()
