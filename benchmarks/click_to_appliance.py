"""Item 2: from the approval click's HTTP request to the moment the simulated appliance
receives the "disable all users" write (`received_at` in the simulator's write log).

Upgrades are requested for `gates` clusters and run up to their disable gate; then each
gate is approved in turn, and the next click waits until the previous job has gone quiet
again at its enable gate (install, reboots and settle done), so that every click meets idle
workers. (Clicking as soon as the previous write arrived, as the first version did, had
the clicked jobs' installs and reboot polls running under the next clicks.)
The click goes through the Slack stand-in, which signs it and posts it to the bot, as
Slack would. The floor, measured in the same run
between the clicks: one Redis round trip (PING) plus one HTTP round trip to the simulator
(its control API). `open_gates`, `click_one` and `floor_ms` also serve item 2 under load
(`benchmarks.under_load`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import httpx
import redis.asyncio as aioredis

from benchmarks.deployment import Deployment, cluster_name
from benchmarks.driver import Driver, Gate, make_driver
from benchmarks.stats import Figure, percentile


async def disable_received(dep: Deployment, http: httpx.AsyncClient, cluster: str,
                           within: float = 30.0) -> float:
    """When the cluster's first `login_permission=false` write arrived (epoch seconds)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        log = (await http.get(f"{dep.control_url}/_sim/clusters/{cluster}/log")).json()
        for e in log["entries"]:
            if e["call"] == "login_permission" and e["detail"] == "false":
                return float(e["received_at"])
        await asyncio.sleep(0.002)
    raise RuntimeError(f"{cluster}: no disable write within {within} s")


async def _quiet(drv: Driver, job_id: str, within: float = 120.0) -> None:
    """Wait until the job waits on a human again (its enable gate) or has finished."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        state = await drv.redis.hget(drv.key(f"job:{job_id}"), "state")
        if state in ("awaiting_approval", "succeeded", "failed", "cancelled"):
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{job_id}: not quiet within {within} s")


async def floor_ms(redis: aioredis.Redis, http: httpx.AsyncClient, node_url: str) -> float:
    """One Redis round trip (PING) plus one HTTP round trip to the simulator, in ms."""
    t0 = time.perf_counter()
    await redis.ping()
    await http.get(node_url)
    return (time.perf_counter() - t0) * 1000


def probe_url(dep: Deployment) -> str:
    """The simulator's control API: always up (a node of a clicked cluster reboots)."""
    return f"{dep.control_url}/_sim/clusters/{cluster_name(dep.clusters - 1)}"


async def open_gates(drv: Driver, indexes: list[int], within: float
                     ) -> dict[str, tuple[int, Gate | None]]:
    """Request upgrades of `indexes` and wait (at most `within` s) until each one's approval
    message is visible; job id -> (cluster index, its gate or None if it never showed)."""
    seen: dict[str, Gate] = {}
    stop, all_seen = asyncio.Event(), asyncio.Event()

    async def remember(g: Gate) -> None:
        seen.setdefault(g.job_id, g)
        if len(seen) >= len(indexes):
            all_seen.set()

    watcher = asyncio.create_task(drv.watch_gates(remember, stop))
    try:
        jobs = {await drv.request(i): i for i in indexes}
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_seen.wait(), within)
    finally:
        stop.set()
        await watcher
    return {j: (i, seen.get(j)) for j, i in jobs.items()}


async def click_one(drv: Driver, http: httpx.AsyncClient, gate: Gate, cluster_index: int
                    ) -> float:
    """Approve `gate`; ms from the click's request to the disable write's arrival (the
    simulator's write log read over `http`)."""
    await drv.click(gate)
    received = await disable_received(drv.dep, http, cluster_name(cluster_index))
    return (received - gate.clicked_at) * 1000


def summary(lat: list[float], floor: list[float]) -> dict[str, Any]:
    return {"gates": len(lat), "click_ms": {"p50": percentile(lat, 50),
                                            "p99": percentile(lat, 99),
                                            "max": max(lat, default=float("nan"))},
            "floor_ms": {"p50": percentile(floor, 50), "p99": percentile(floor, 99)}}


async def measure(dep: Deployment, first: int, gates: int, idle: bool = True
                  ) -> tuple[list[Figure], dict[str, Any]]:
    """Clusters first..first+gates-1: p50/p99 click -> disable write, and the floor;
    `idle`: each click waits until the previous job is quiet again."""
    drv = make_driver(dep)
    try:
        if idle:  # item 1's dry runs finish first: idle workers, and no cluster taken
            await drv.wait_idle(300)
        jobs = await open_gates(drv, list(range(first, first + gates)), 60 + gates)
        lat, floor = [], []
        async with httpx.AsyncClient(timeout=10) as probe:
            node_url = probe_url(dep)
            for _ in range(3):
                await floor_ms(drv.redis, probe, node_url)
            for job_id, (idx, gate) in jobs.items():
                if gate is None:
                    continue
                floor.append(await floor_ms(drv.redis, probe, node_url))
                lat.append(await click_one(drv, probe, gate, idx))
                if idle:
                    await _quiet(drv, job_id)
        figures = [
            Figure("2", f"click -> disable write p{q}, idle ({len(lat)} gates)",
                   percentile(lat, q), "ms", percentile(floor, q),
                   "p99 <= 100 ms" if q == 99 else "",
                   "baseline: floor (Redis PING + one HTTP GET to the simulator)")
            for q in (50, 99)
        ]
        details = {**summary(lat, floor), "job_ids": list(jobs)}
        return figures, details
    finally:
        await drv.http.aclose()
        await drv.redis.aclose()
