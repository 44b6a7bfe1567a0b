"""Latency of `/pps history <cluster>` with a long history (a figure, not a test).

    .venv/bin/python -m benchmarks.history_latency [--jobs 20000] [--runs 5]

Writes `--jobs` finished job records the way a deployment that predates the per-cluster
history index holds them (the job hash plus the global `history` zset), under a private
key prefix at $REDIS_URL, and removes them afterwards. Most jobs belong to `busy-1` and
`busy-2`; `quiet` has only the oldest few, so a reader that filters the global history has
to walk all of it to fill a page. Reports, through `JobService.history` and through the
command runner (what the `/pps` ack waits for):

- the first call (on a deployment without the index it builds it once),
- then the median and worst of `--runs` calls for `quiet`, `busy-1` and all clusters,
- and the answer to `history no-such-cluster`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from jobs.config.clock import SystemClock
from jobs.config.inventory import Cluster, Firmware, Inventory, Node
from jobs.config.settings import Settings
from jobs.fleet.view import FleetView
from jobs.rules.model import Job, State, Step
from jobs.service import JobService
from jobs.store.fleet import FleetStore
from jobs.store.keys import Keys
from jobs.store.redis_client import make_redis
from jobs.store.wiring import redis_service

CLUSTERS = ("busy-1", "busy-2", "quiet")
QUIET_JOBS = 5  # the oldest jobs; everything after them is busy-1 / busy-2


def inventory() -> Inventory:
    def cluster(name: str) -> Cluster:
        return Cluster(name, "standalone", (Node(f"{name}-a", "https://192.0.2.1"),),
                       "PPS_U", "PPS_P")

    fw = (Firmware("9.1R18", Path("pps-9.1R18-package.pkg"), "0" * 64),)
    return Inventory({n: cluster(n) for n in CLUSTERS}, fw)


def job_record(n: int, created: float) -> Job:
    name = "quiet" if n <= QUIET_JOBS else CLUSTERS[n % 2]
    return Job(id=f"J-{n:05d}", cluster=name, target="9.1R18", requester="U_BENCH",
               channel="C_BENCH", state=State.SUCCEEDED, step=Step.VERIFY,
               created_at=created, updated_at=created + 60, finished_at=created + 60,
               dry_run=n % 3 == 0)


async def populate(redis: Any, keys: Keys, count: int, now: float) -> None:
    """`count` finished jobs, one a minute up to `now`, as a pre-index deployment has them."""
    pipe = redis.pipeline(transaction=False)
    for n in range(1, count + 1):
        created = now - (count - n) * 60.0
        pipe.hset(keys.job(f"J-{n:05d}"), mapping=job_record(n, created).to_hash())
        pipe.zadd(keys.history, {f"J-{n:05d}": int(created * 1000)})
        if n % 1000 == 0:
            await pipe.execute()
    await pipe.execute()


async def timed(fn: Callable[[], Awaitable[object]]) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = await fn()
    return time.perf_counter() - t0, out


def fmt(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


async def main(jobs: int, runs: int) -> None:
    prefix = f"ppsbench:{uuid.uuid4().hex[:8]}:"
    redis = make_redis(os.environ.get("REDIS_URL", "redis://localhost:6379/0"))
    settings = Settings(_env_file=None, PPS_REDIS_PREFIX=prefix)
    keys = Keys(prefix)
    clock = SystemClock()
    service = redis_service(redis, settings, inventory(), clock, keys)
    try:
        t0 = time.perf_counter()
        await populate(redis, keys, jobs, clock.now())
        print(f"{jobs} finished jobs written in {time.perf_counter() - t0:.1f} s "
              f"({QUIET_JOBS} on quiet, the oldest)")
        took, first = await timed(lambda: service.history("quiet", limit=20))
        assert isinstance(first, list)
        print(f"first history(quiet):          {fmt(took)}  ({len(first)} jobs)")
        for name in ("quiet", "busy-1", None):
            times, got = [], []
            for _ in range(runs):
                t0 = time.perf_counter()
                got = await service.history(name, limit=20)
                times.append(time.perf_counter() - t0)
            label = f"history({name or 'all'})"
            print(f"{label:<30} median {fmt(statistics.median(times))}, "
                  f"worst {fmt(max(times))}  ({len(got)} jobs)")
        await command_figures(service, redis, keys, settings, runs)
    finally:
        async for key in redis.scan_iter(match=f"{prefix}*", count=1000):
            await redis.delete(key)
        await redis.aclose()


async def command_figures(
    service: JobService, redis: aioredis.Redis, keys: Keys, settings: Settings, runs: int
) -> None:
    """The same through `/pps history …` as the ack path runs it (no Slack involved)."""
    from handlers.auth import Authorizer
    from handlers.commands import Caller, CommandRunner

    async def no_groups(group: str) -> list[str]:
        return []

    auth = Authorizer(settings, redis, keys, no_groups, service.clock)
    fleet = FleetView(FleetStore(redis, keys), service, service.inventory, service.clock,
                      settings.PPS_FLEET_POLL_SECONDS)
    runner = CommandRunner(service, service.inventory, settings, auth, service.clock,
                           fleet=fleet)
    caller = Caller("U_BENCH", "C_BENCH")
    for text in ("history quiet", "history no-such-cluster"):
        times = []
        reply: object = None
        for _ in range(runs):
            t0 = time.perf_counter()
            reply = await runner.run(text, caller)
            times.append(time.perf_counter() - t0)
        print(f"/pps {text:<25} median {fmt(statistics.median(times))}, "
              f"worst {fmt(max(times))}  -> {type(reply).__name__}")


def cli(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--jobs", type=int, default=20_000)
    p.add_argument("--runs", type=int, default=5)
    a = p.parse_args(argv)
    asyncio.run(main(a.jobs, a.runs))


if __name__ == "__main__":
    cli()
