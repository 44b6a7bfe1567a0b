"""Items 1 and 2 while item 3's load runs, in the same deployment.

First `gates` upgrades on clusters reserved for item 2 are requested and run up to their
approval message, which nobody clicks yet. Then item 3's load starts on other clusters (N
upgrades requested within 10 s, every gate of theirs approved as it appears) and, while it
runs, one after the other and never two at once:

- item 2: a reserved gate is clicked and the time to the simulator's receipt of the
  "disable all users" write is taken, with the floor (Redis PING + one HTTP round trip to
  the simulator) measured just before it;
- item 1: a burst of `c` concurrent clients sends signed `/pps` commands to the bot, then
  the same burst to the bare Bolt app (or the other way round, alternating by round).

The clicks are spread between the bursts so both sample the whole load. At the full size
the load starts only after the workers' first fleet poll (the reserved gates open during
that wait, when nothing is measured). A sample taken
after the load's last job finished is not counted (an ack round counts only if both its
bursts ended while the load ran); the details say how many were dropped.
"""

from __future__ import annotations

import asyncio
import math
import sys
from typing import Any

import httpx

from benchmarks import ack_concurrency, click_to_appliance, many_upgrades
from benchmarks.ack_concurrency import bare_bolt, burst
from benchmarks.deployment import Deployment, wait_fleet_read
from benchmarks.driver import Gate, make_driver
from benchmarks.stats import Figure, percentile


async def measure(dep: Deployment, gate_first: int, gates: int, load_indexes: list[int],
                  within: float, concurrency: tuple[int, ...], rounds: int, per_client: int,
                  settle_fleet: bool = False) -> tuple[list[Figure], dict[str, Any]]:
    """Items 1 and 2 (clusters gate_first.. reserved) during item 3's load on
    `load_indexes`; with `settle_fleet`, the load starts only once the workers' first
    fleet poll has read every cluster (the reserved gates open meanwhile)."""
    drv = make_driver(dep)
    n = len(load_indexes)
    try:
        reserved = await click_to_appliance.open_gates(
            drv, list(range(gate_first, gate_first + gates)), 60 + gates)
        if settle_fleet:
            waited = await asyncio.to_thread(wait_fleet_read, dep.redis_url, dep.prefix,
                                             dep.clusters, 60 + dep.clusters / 4)
            print(f"first fleet poll of {dep.clusters} clusters done after {waited:.1f} s "
                  "more", file=sys.stderr)
        pending: list[tuple[int, Gate]] = [(i, g) for i, g in reserved.values() if g is not None]
        bursts = [(c, r) for r in range(rounds) for c in concurrency]
        per_gap = math.ceil(len(pending) / (len(bursts) + 1)) if pending else 0
        lat: list[float] = []
        floor: list[float] = []
        acks: dict[int, tuple[list[float], list[float]]] = {c: ([], []) for c in concurrency}
        dropped = {"clicks": 0, "ack_rounds": 0}
        failed0 = ack_concurrency.FAILED.get(dep.cfg.events_url, 0)
        with bare_bolt(dep.secret) as bare_url:
            for url in (dep.cfg.events_url, bare_url):  # warm both
                await burst(url, dep.secret, 5, 2, dep.clusters)
            task = asyncio.create_task(many_upgrades.load(
                drv, load_indexes, within, ignore=frozenset(reserved)))
            async with httpx.AsyncClient(timeout=10) as probe:
                node_url = click_to_appliance.probe_url(dep)

                async def clicks(count: int) -> None:
                    for _ in range(min(count, len(pending))):
                        idx, gate = pending.pop(0)
                        f = await click_to_appliance.floor_ms(drv.redis, probe, node_url)
                        ms = await click_to_appliance.click_one(drv, probe, gate, idx)
                        if task.done():
                            dropped["clicks"] += 1
                        else:
                            floor.append(f)
                            lat.append(ms)

                for c, r in bursts:
                    await clicks(per_gap)
                    order = [(dep.cfg.events_url, 0), (bare_url, 1)]
                    got: list[list[float]] = [[], []]
                    for url, k in order if r % 2 == 0 else reversed(order):
                        got[k] = await burst(url, dep.secret, c, per_client, dep.clusters)
                    if task.done():
                        dropped["ack_rounds"] += 1
                    else:
                        acks[c][0].extend(got[0])
                        acks[c][1].extend(got[1])
                await clicks(len(pending))
            run = await task
        figures: list[Figure] = []
        details: dict[str, Any] = {"load": many_upgrades.summary(run, {}), "dropped": dropped}
        for c, (bot, base) in acks.items():
            for q in (50, 99):
                figures.append(Figure(
                    "1", f"ack p{q}, {c} concurrent clients, under item 3 load",
                    percentile(bot, q), "ms", percentile(base, q),
                    "p99 ratio <= 1.2x" if q == 99 else "",
                    f"baseline: bare Bolt AsyncApp, interleaved; {len(bot)} requests during "
                    f"{n} upgrades at once"))
            details[f"clients_{c}"] = {"requests": len(bot),
                                       "bot_ms": ack_concurrency.summary(bot),
                                       "bare_bolt_ms": ack_concurrency.summary(base)}
        for q in (50, 99):
            figures.append(Figure(
                "2", f"click -> disable write p{q}, under item 3 load ({len(lat)} gates)",
                percentile(lat, q), "ms", percentile(floor, q),
                "p99 <= 250 ms" if q == 99 else "",
                f"baseline: floor, measured under the same load; {n} upgrades at once"))
        details["click_to_appliance"] = click_to_appliance.summary(lat, floor)
        figures.append(ack_concurrency.failed_figure(
            ack_concurrency.FAILED.get(dep.cfg.events_url, 0) - failed0, ", under item 3 load"))
        return figures, details
    finally:
        await drv.http.aclose()
        await drv.redis.aclose()
