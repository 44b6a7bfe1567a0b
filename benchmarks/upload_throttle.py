"""Item 3 with one cluster's firmware upload throttled (issue 12, item 4): no other job may
be delayed by it.

The simulator's `upload_seconds` knob is set on one cluster (`PATCH /_sim/clusters/<c>`):
its install call's multipart upload is read at an even pace over that many seconds, and
answered only then, as over a slow WAN link. That cluster's upgrade is requested first,
then `n` others within a few seconds, every gate approved as it appears. Reported: the
median and max duration of the other jobs over their mode's job alone (measured in the same
deployment before the load), beside the same figures of the same load with no upload
throttled (run first, on clusters of the same modes): their ratio says how much the slow
upload delayed the others, apart from what running `n` upgrades at once costs. And the
throttled job's own duration beside its mode's alone.
"""

from __future__ import annotations

import statistics
from typing import Any

from benchmarks import many_upgrades
from benchmarks.deployment import MODES, Deployment, cluster_name
from benchmarks.driver import make_driver
from benchmarks.stats import Figure


async def measure(dep: Deployment, throttled: int, others: list[int], upload_seconds: float,
                  alone: dict[str, float], within: float, unthrottled: list[int] | None = None
                  ) -> tuple[list[Figure], dict[str, Any]]:
    """Cluster `throttled` (upload held `upload_seconds`) and `others` at once; first, with
    `unthrottled` (as many clusters, the first standing for `throttled`), the same load with
    no upload throttled."""
    drv = make_driver(dep)
    base: dict[str, Any] = {}
    try:
        if unthrottled:
            first = unthrottled[0]
            b_run = await many_upgrades.load(drv, unthrottled, within)
            b_ratios = b_run.ratios(alone, skip=frozenset({first}))
            base = {**many_upgrades.summary(b_run, b_ratios),
                    "writes": many_upgrades.writes(dep, unthrottled)}
        dep.configure(cluster_name(throttled), {"knobs": {"upload_seconds": upload_seconds}})
        run = await many_upgrades.load(drv, [throttled, *others], within + upload_seconds)
    finally:
        await drv.http.aclose()
        await drv.redis.aclose()
    ratios = run.ratios(alone, skip=frozenset({throttled}))
    slow = next((d for j, d in run.durations.items() if run.jobs[j] == throttled), float("nan"))
    mode = MODES[throttled % len(MODES)]
    n = len(others)
    note = f"{n} others at once, 2 workers; one upload throttled to {upload_seconds:g} s"
    med = statistics.median(ratios.values()) if ratios else float("nan")
    b_med, b_max = (base["ratio"]["median"], base["ratio"]["max"]) if base else (None, None)
    if base:
        note += "; baseline: the same load with no upload throttled, run first"
    figs = [
        Figure("4", "job duration median of the others, one upload throttled / alone", med,
               "x", b_med, "", note),
        Figure("4", "job duration max of the others, one upload throttled / alone",
               max(ratios.values(), default=float("nan")), "x", b_max,
               "ratio <= 1.10x" if base else "<= 1.10x", note),
        Figure("4", "throttled job's own duration", slow, "s", alone[mode], "",
               f"baseline: its mode ({mode}) alone; expect about it + {upload_seconds:g} s"),
    ]
    details = {**many_upgrades.summary(run, ratios), "throttled": cluster_name(throttled),
               "upload_seconds": upload_seconds, "throttled_seconds": slow,
               "writes": many_upgrades.writes(dep, [throttled, *others]),
               "unthrottled": base}
    return figs, details
