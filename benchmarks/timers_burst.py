"""Item 6: `count` durable timers due at the same instant (scheduled starts), 2 workers.

The jobs are created through `JobService.create_job` with a start time a few seconds ahead,
for clusters whose nodes refuse connections (the figure is the timer, not the upgrade).
Two real `ppsbot worker` processes with the production timings release and run them.

Two figures per timer, both from Redis stream times (one clock):
- fired: its due time -> the timer released into the work stream (the `start` item's
  stream id), the timer's own lateness, with its target; a start released twice fired twice;
- started: its due time -> the worker's commit of the job leaving `scheduled` (the `state`
  event). This one also waits for a free slot of `PPS_WORKER_CONCURRENCY` per worker,
  each held by a preflight, so it measures the workers' throughput, not the timer.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
import yaml

from benchmarks.deployment import PASSWORD_ENV, USERNAME_ENV, cleanup_prefix
from benchmarks.stats import Figure, percentile
from sim.demo.config import free_port, write_firmware
from sim.demo.stack import child_env


def _inventory(run_dir: Path, count: int) -> Path:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: connections are refused
    clusters = {f"t{i:05d}": {"mode": "standalone", "username_env": USERNAME_ENV,
                              "password_env": PASSWORD_ENV, "channel": "C0BENCHT",
                              "nodes": [{"name": f"t{i:05d}-a", "url": dead}]}
                for i in range(count)}
    path = run_dir / "inventory.yml"
    path.write_text(yaml.safe_dump({"clusters": clusters, "firmware": write_firmware(run_dir)}))
    return path


async def _create(env: dict[str, str], count: int, due: float) -> list[str]:
    from jobs.config.clock import SystemClock
    from jobs.config.inventory import load_inventory
    from jobs.config.settings import Settings
    from jobs.service import UpgradeRequest
    from jobs.store.redis_client import make_redis
    from jobs.store.wiring import redis_service

    settings = Settings(_env_file=None, **env)  # type: ignore[arg-type]
    inventory = load_inventory(env["PPS_INVENTORY"], check_files=False, check_env=False)
    redis = make_redis(settings.REDIS_URL)
    service = redis_service(redis, settings, inventory, SystemClock())
    try:
        ids = []
        for i in range(count):
            job, _ = await service.create_job(UpgradeRequest(
                cluster=f"t{i:05d}", requester="U_BENCHREQ", channel="C0BENCHT", at=due))
            ids.append(job.id)
        return ids
    finally:
        await redis.aclose()


async def _workers_up(env: dict[str, str], workers: int, within: float = 60.0) -> None:
    """Wait until `workers` workers announce themselves (so none is late for starting)."""
    from jobs.config.clock import SystemClock
    from jobs.config.settings import Settings
    from jobs.store.keys import Keys
    from jobs.store.presence import Presence
    from jobs.store.redis_client import make_redis

    settings = Settings(_env_file=None, **env)  # type: ignore[arg-type]
    redis = make_redis(settings.REDIS_URL)
    presence = Presence(redis, Keys(settings.PPS_REDIS_PREFIX), SystemClock(),
                        settings.PPS_LEASE_SECONDS)
    deadline = time.monotonic() + within
    try:
        while await presence.alive() < workers:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{workers} workers did not start within {within} s")
            await asyncio.sleep(0.1)
    finally:
        await redis.aclose()


async def _lateness(redis_url: str, prefix: str, due_ms: int, ids: set[str], within: float,
                    linger_ms: int = 3000
                    ) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """(job id -> stream times (ms) its start timer was released into the work stream,
    job id -> stream times of each `scheduled -> …` transition)."""
    r = aioredis.Redis.from_url(redis_url, decode_responses=True)
    released: dict[str, list[int]] = {}
    started: dict[str, list[int]] = {}
    # Plain XREAD (no consumer group) leaves the workers' delivery untouched; the queue is
    # read from just before the due time, as workers delete items once done.
    last = {prefix + "events": "0-0", prefix + "queue": f"{due_ms - 5000}-0"}
    deadline = time.monotonic() + within
    try:
        while time.monotonic() < deadline:
            got: Any = await r.xread(last, count=2000, block=50)  # type: ignore[arg-type]
            for stream, entries in got or []:
                for eid, f in entries:
                    last[stream] = eid
                    at, job = int(eid.split("-")[0]), f.get("job_id")
                    if job not in ids:
                        continue
                    if stream.endswith("queue") and f.get("kind") == "start":
                        released.setdefault(job, []).append(at)
                    elif f.get("kind") == "state" and json.loads(
                            f.get("data") or "{}").get("from") == "scheduled":
                        started.setdefault(job, []).append(at)
            if len(started) >= len(ids) and time.time() * 1000 > due_ms + linger_ms:
                break  # all started; a little longer to catch a second firing
        return released, started
    finally:
        await r.aclose()


def _spawn_workers(run_dir: Path, env: dict[str, str], workers: int
                   ) -> list[subprocess.Popen[bytes]]:
    procs = []
    for w in range(workers):
        with (run_dir / f"worker-{w}.log").open("wb") as log:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "worker", "--name", f"bench-t{w}"],
                cwd=run_dir, env=child_env(env), stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True))
    return procs


async def measure(redis_url: str, count: int, workers: int = 2, lead: float = 2.0,
                  linger: float = 3.0, before: Callable[[], None] | None = None,
                  stop_grace: float = 15.0) -> tuple[list[Figure], dict[str, Any]]:
    """p50/p99/max lateness of `count` timers due at once; how many fired twice. The
    workers are killed if they take over `stop_grace` s to stop (their preflights retry
    the refused connections for a few seconds, and a stop lets them finish).
    `before` is called once the workers are up and the timers created, before they are due
    (the previous deployment's stop ends meanwhile)."""
    prefix = f"ppsbench:{uuid.uuid4().hex[:8]}:"
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="ppsbench-timers-") as tmp:
        run_dir = Path(tmp)
        env = {"REDIS_URL": redis_url, "PPS_REDIS_PREFIX": prefix,
               "PPS_INVENTORY": str(_inventory(run_dir, count)), "PPS_CHANNEL": "C0BENCHT",
               "SLACK_BOT_TOKEN": "xoxb-unused", "SLACK_SIGNING_SECRET": "unused",
               "PPS_BACKUP_DIR": str(run_dir / "backups"), "PPS_APPROVERS": "U_BAPP00000",
               USERNAME_ENV: "admin", PASSWORD_ENV: "unused", "LOG_FORMAT": "json",
               "LOG_LEVEL": "WARNING", "PPS_WORKER_METRICS_PORT": "0"}
        try:
            procs.extend(_spawn_workers(run_dir, env, workers))
            await _workers_up(env, workers)
            due = time.time() + lead + count / 250
            ids = await _create(env, count, due)
            slack = due - time.time()
            if before is not None:
                await asyncio.to_thread(before)
            ready = due - time.time()  # < 0: the timers were due before `before` returned
            due_ms = int(due * 1000)
            fired, started = await _lateness(redis_url, prefix, due_ms, set(ids),
                                             20 + count / 20, int(linger * 1000))
        finally:
            for p in procs:
                p.terminate()
            deadline = time.monotonic() + stop_grace
            for p in procs:
                try:
                    p.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=5)
            cleanup_prefix(redis_url, prefix)
    late = [max(0, t[0] - due_ms) for t in fired.values()]
    start_late = [max(0, t[0] - due_ms) for t in started.values()]
    twice = sum(1 for t in fired.values() if len(t) > 1) + sum(
        1 for t in started.values() if len(t) > 1)
    missing = count - len(fired)
    figs = [Figure("6", f"timer lateness p{q} (due -> fired), {count} due at once, "
                   f"{workers} workers", float(percentile(late, q)), "ms", None,
                   "p99 <= 1000 ms" if q == 99 else "", "") for q in (50, 99)]
    figs.append(Figure("6", "timer lateness max (due -> fired)", float(max(late, default=0)),
                       "ms", None, "", ""))
    figs += [Figure("6", f"due -> job started p{q}", float(percentile(start_late, q)), "ms",
                    None, "", "waits for a worker slot; throughput, not the timer")
             for q in (50, 99)]
    figs.append(Figure("6", "timers fired twice / never", float(twice + missing), "", None,
                       "0", f"twice {twice}, never {missing}, not started "
                            f"{count - len(started)}"))
    details = {"timers": count, "workers": workers, "fired": len(fired), "fired_twice": twice,
               "never_fired": missing, "started": len(started), "created_ahead_s": slack,
               "ready_ahead_s": ready,
               "fired_lateness_ms": {"p50": percentile(late, 50), "p99": percentile(late, 99),
                                     "max": max(late, default=0)},
               "started_lateness_ms": {"p50": percentile(start_late, 50),
                                       "p99": percentile(start_late, 99),
                                       "max": max(start_late, default=0)}}
    return figs, details
