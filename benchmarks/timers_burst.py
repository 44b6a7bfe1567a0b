"""Item 6: `count` durable timers due at the same instant (scheduled starts), 2 workers.

The jobs are created through `JobService.create_job` with a start time a few seconds ahead,
for clusters whose nodes refuse connections (the figure is the timer, not the upgrade).
Two real `ppsbot worker` processes with the production timings release and run them.
Lateness of a timer: its due time -> the worker's commit of the job leaving `scheduled`
(the `state` event's stream time); a job that left `scheduled` twice fired twice.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
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


async def _lateness(redis_url: str, prefix: str, due_ms: int, ids: set[str], within: float
                    ) -> tuple[dict[str, list[int]], int]:
    """Job id -> stream times (ms) of each `scheduled -> …` transition; events read."""
    r = aioredis.Redis.from_url(redis_url, decode_responses=True)
    fired: dict[str, list[int]] = {}
    last, seen = "0-0", 0
    deadline = time.monotonic() + within
    try:
        while time.monotonic() < deadline:
            got: Any = await r.xread({prefix + "events": last}, count=2000, block=200)
            for _s, entries in got or []:
                for eid, f in entries:
                    last, seen = eid, seen + 1
                    if f.get("kind") == "state" and f.get("job_id") in ids and json.loads(
                            f.get("data") or "{}").get("from") == "scheduled":
                        fired.setdefault(f["job_id"], []).append(int(eid.split("-")[0]))
            if len(fired) >= len(ids) and time.time() * 1000 > due_ms + 3000:
                break  # all fired; a little longer to catch a second firing
        return fired, seen
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


async def measure(redis_url: str, count: int, workers: int = 2
                  ) -> tuple[list[Figure], dict[str, Any]]:
    """p50/p99/max lateness of `count` timers due at once; how many fired twice."""
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
            due = time.time() + 4 + count / 250
            ids = await _create(env, count, due)
            slack = due - time.time()
            due_ms = int(due * 1000)
            fired, _seen = await _lateness(redis_url, prefix, due_ms, set(ids), 20 + count / 20)
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
            cleanup_prefix(redis_url, prefix)
    late = [max(0, t[0] - due_ms) for t in fired.values()]
    twice = sum(1 for t in fired.values() if len(t) > 1)
    missing = count - len(fired)
    figs = [Figure("6", f"timer lateness p{q}, {count} due at once, {workers} workers",
                   float(percentile(late, q)), "ms", None, "p99 <= 1000 ms" if q == 99 else "",
                   "") for q in (50, 99)]
    figs.append(Figure("6", "timer lateness max", float(max(late, default=0)), "ms", None, "",
                       ""))
    figs.append(Figure("6", "timers fired twice / never", float(twice + missing), "", None,
                       "0", f"twice {twice}, never {missing}"))
    details = {"timers": count, "workers": workers, "fired": len(fired), "fired_twice": twice,
               "never_fired": missing, "created_ahead_s": slack,
               "lateness_ms": {"p50": percentile(late, 50), "p99": percentile(late, 99),
                               "max": max(late, default=0)},
               "by_worker_lateness_hist": dict(Counter(x // 250 * 250 for x in late))}
    return figs, details
