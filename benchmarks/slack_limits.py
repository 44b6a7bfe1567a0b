"""Item 3 with the Slack stand-in's rate limits on (issue 12, items 3 and 5).

The deployment's stand-in answers 429 with a `Retry-After` above `limit` calls per second
per method (per channel for `chat.postMessage`, as Slack does). Item 3's load runs on `n`
clusters, every gate approved as it appears; once the jobs finished, the bot's remaining
posts and card edits are let drain (until no call came for a few seconds). Reported: calls
made before a `Retry-After` ran out (target 0), 429s received, and the delay between a gate
opening and its message being visible, beside the same figure with the limits off
(measured in the other deployment on as many clusters).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

from benchmarks import many_upgrades
from benchmarks.deployment import Deployment
from benchmarks.driver import make_driver
from benchmarks.stats import Figure, percentile

QUIET_SECONDS = 3.0  # above the stand-in's Retry-After (1 s): a call held by one still comes


async def drain(dep: Deployment, within: float, quiet: float = QUIET_SECONDS) -> float:
    """Wait until the stand-in got no call for `quiet` seconds (at most `within`); seconds."""
    t0 = time.monotonic()
    count, quiet_since = dep.slack_call_count(), time.monotonic()
    while time.monotonic() - t0 < within:
        await asyncio.sleep(min(0.5, quiet / 6))
        now = dep.slack_call_count()
        if now != count:
            count, quiet_since = now, time.monotonic()
        elif time.monotonic() - quiet_since >= quiet:
            break
    return time.monotonic() - t0


async def measure(dep: Deployment, indexes: list[int], limit: int, within: float,
                  limits_off: dict[str, float] | None, off_note: str,
                  quiet: float = QUIET_SECONDS) -> tuple[list[Figure], dict[str, Any]]:
    """The load on `indexes` with the stand-in limiting at `limit` calls/s. `limits_off`:
    gate-visible p50/p99 (ms) of a comparable load with the limits off, described by
    `off_note`, or None. The calls are drained until none came for `quiet` seconds."""
    drv = make_driver(dep)
    try:
        before = dep.slack_call_count()
        run = await many_upgrades.load(drv, indexes, within)
        drained = await drain(dep, 60 + len(indexes), quiet)
        calls = dep.slack_calls(before)
    finally:
        await drv.http.aclose()
        await drv.redis.aclose()
    early = sum(1 for c in calls if c.get("early"))
    limited = [c for c in calls if c.get("status") == 429]
    n = len(indexes)
    where = (f"{n} upgrades, 2 workers, stand-in limit {limit}/s per method "
             "(chat.postMessage: per channel)")
    off = limits_off or {}
    figs = [
        Figure("5", "Slack calls before Retry-After ran out, limits on", early, "", None, "0",
               where),
        Figure("5", "Slack 429s received, limits on", len(limited), "", None, "",
               ", ".join(f"{m} {k}" for m, k in Counter(c["method"] for c in limited)
                         .most_common()) or "none"),
        *[Figure("5", f"gate opened -> message visible p{q}, limits on",
                 percentile(run.lag_ms, q), "ms", off.get(f"p{q}"), "",
                 off_note if limits_off else "no limits-off run to compare")
          for q in (50, 99)],
    ]
    details = {**many_upgrades.summary(run, {}), "rate_limit_per_second": limit,
               "calls_with_drain": len(calls), "early_calls": early, "slack_429": len(limited),
               "drain_seconds": drained, "drain_quiet_seconds": quiet}
    return figs, details
