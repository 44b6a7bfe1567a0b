"""Item 3 (reduced): N clusters upgraded at once by 2 workers and 1 bot, every approval
clicked by a different user as soon as its message appears.

First one cluster of each mode is upgraded alone (the baseline, same deployment); then N
upgrades are requested within a few seconds and every gate is approved as it appears.
Reported: median and max job duration over the same mode's job alone; peak RSS of each
process; appliance writes per cluster (exactly one disable, one install, one enable);
Slack calls by method and per job, and calls made before a Retry-After ran out; Redis
memory per finished job (MEMORY USAGE of the deployment's keys / finished jobs); and the
delay between a gate opening and its message being visible.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections import Counter
from typing import Any

import httpx

from benchmarks.deployment import MODES, Deployment, cluster_name
from benchmarks.driver import Driver, Gate, make_driver
from benchmarks.stats import Figure, cpu_seconds, machine_cpu, peak_rss_mb, percentile


async def _run(drv: Driver, indexes: list[int], within: float, spread: float
               ) -> tuple[dict[str, int], dict[str, str]]:
    """Request upgrades of `indexes` within `spread` seconds, approve every gate at once;
    (job id -> cluster index, job id -> final state)."""
    stop = asyncio.Event()
    clicks: list[asyncio.Task[Any]] = []

    async def approve(g: Gate) -> None:
        clicks.append(asyncio.create_task(drv.click(g)))

    watcher = asyncio.create_task(drv.watch_gates(approve, stop))
    jobs: dict[str, int] = {}
    step = spread / max(1, len(indexes))

    async def one(k: int, i: int) -> None:
        await asyncio.sleep(k * step)
        jobs[await drv.request(i)] = i

    try:
        await asyncio.gather(*(one(k, i) for k, i in enumerate(indexes)))
        states = await drv.wait_finished(list(jobs), within)
    finally:
        stop.set()
        await watcher
        await asyncio.gather(*clicks, return_exceptions=True)
    return jobs, states


def _writes(dep: Deployment, indexes: list[int]) -> dict[str, Any]:
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


async def measure(dep: Deployment, first: int, n: int, within: float
                  ) -> tuple[list[Figure], dict[str, Any]]:
    """Baseline clusters first..first+2 (one per mode), then n at once after them."""
    drv = make_driver(dep)
    try:
        alone: dict[str, float] = {}
        for i in range(first, first + len(MODES)):
            jobs, states = await _run(drv, [i], within, 0)
            d = await drv.durations(list(jobs))
            alone[MODES[i % len(MODES)]] = next(iter(d.values()), float("nan"))
        gates_before = len(drv.gates)
        calls_before = len(dep.slack_calls())
        load = list(range(first + len(MODES), first + len(MODES) + n))
        pids = dep.pids()
        cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
        busy0, all0 = machine_cpu()
        t0 = time.monotonic()
        jobs, states = await _run(drv, load, within, min(10.0, n * 0.05))
        wall = time.monotonic() - t0
        busy1, all1 = machine_cpu()
        cpu = {name: cpu_seconds(pid) - cpu0[name] for name, pid in pids.items()}
        busy = (busy1 - busy0) / max(1e-9, all1 - all0)
        dur = await drv.durations(list(jobs))
        ratios = [dur[j] / alone[MODES[jobs[j] % len(MODES)]] for j in dur]
        calls = dep.slack_calls()[calls_before:]
        by_method = Counter(c["method"] for c in calls)
        early = sum(1 for c in calls if c.get("early"))
        finished = sum(1 for s in (await drv.states(list(jobs))).values() if s == "succeeded")
        rss = {name: peak_rss_mb(pid) for name, pid in dep.pids().items()}
        redis_bytes = await _redis_bytes(drv)
        all_jobs = [k async for k in drv.redis.scan_iter(match=dep.prefix + "job:*", count=1000)]
        lag = [(g.visible_at * 1000 - g.opened_ms) for g in drv.gates[gates_before:]]
        writes = _writes(dep, load)
        figs = [
            Figure("3", f"job duration median, {n} at once / alone", statistics.median(ratios),
                   "x", None, "<= 1.10x", "per job over its mode's job alone"),
            Figure("3", f"job duration max, {n} at once / alone", max(ratios), "x", None,
                   "<= 1.10x", ""),
            Figure("3", "machine CPU busy during the load", 100 * busy, "%", None, "",
                   f"{os.cpu_count()} cores; CPU s per job: " + ", ".join(
                       f"{k} {v / max(1, len(jobs)):.2f}" for k, v in sorted(cpu.items()))),
            Figure("3", "gate opened -> message visible p99", percentile(lag, 99), "ms", None,
                   "", "Slack pacing share, reported apart"),
            *[Figure("3", f"peak RSS {name}", mb, "MB", None, "<= 150 MB" if name in (
                "bot", "worker-1", "worker-2") else "", "") for name, mb in sorted(rss.items())],
            Figure("3", "clusters not written exactly 1 disable/1 install/1 enable",
                   len(writes["not_exactly_one_each"]), "", None, "0", f"of {len(load)}"),
            Figure("3", "Slack calls per job", len(calls) / max(1, len(jobs)), "", None, "",
                   ", ".join(f"{m} {c / max(1, len(jobs)):.1f}"
                             for m, c in by_method.most_common())),
            Figure("3", "Slack calls before Retry-After ran out", early, "", None, "0",
                   "stand-in rate limits off"),
            Figure("3", "Redis memory per finished job", redis_bytes / 1024 / max(1, len(
                all_jobs)), "KB", None, "", f"{len(all_jobs)} jobs under the prefix"),
        ]
        details = {
            "clusters": n, "succeeded": finished, "states": dict(Counter(states.values())),
            "wall_seconds": wall, "alone_seconds": alone, "machine_cpu_busy": busy,
            "cpu_seconds": cpu,
            "duration_seconds": {"median": statistics.median(dur.values()),
                                 "max": max(dur.values())},
            "ratio": {"median": statistics.median(ratios), "max": max(ratios)},
            "peak_rss_mb": rss, "slack_calls_by_method": dict(by_method),
            "slack_calls": len(calls), "slack_early_calls": early,
            "gate_visible_ms": {"p50": percentile(lag, 50), "p99": percentile(lag, 99),
                                "max": max(lag, default=float("nan"))},
            "writes": writes, "redis_bytes": redis_bytes, "jobs_under_prefix": len(all_jobs),
        }
        return figs, details
    finally:
        await drv.http.aclose()
        await drv.redis.aclose()
