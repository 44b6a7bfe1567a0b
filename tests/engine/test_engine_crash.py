"""Crash matrix: SIGKILL a real worker process at each of the 11 step boundaries and once in
the middle of the reboot watch, start another worker, and check the job still succeeds with
disable, install and enable each sent exactly once. Runs in parallel, one key prefix each.

Prints one line per run: `crash-matrix boundary=... killed=... final=... disable=N ...`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from crash_worker import fake_key
from engine_support import (
    REQUESTER,
    approve_until,
    crash_settings,
    make_inventory,
    worker_started,
)

from jobs.config.clock import SystemClock
from jobs.rules.model import State, Step
from jobs.service import UpgradeRequest
from jobs.store.keys import Keys
from jobs.store.redis_client import make_redis
from jobs.store.wiring import redis_service
from tests.fakes.appliance import FakeCluster

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".venv" / "bin" / "python"
BOUNDARIES = [s.value for s in Step] + ["poll:3"]
# Beyond the matrix: die right after the appliance accepted a side effect, before the step's
# commit (the check-first steps must find it done and not send it again).
MID_STEP = ["sent:disable", "sent:install", "sent:enable"]
PHASE_TIMEOUT = 40.0


@dataclass
class Run:
    boundary: str
    killed: bool
    final: str
    disable: int
    install: int
    enable: int
    second_exit: int | None
    seconds: float

    @property
    def finished(self) -> bool:
        return (
            self.killed
            and self.final == State.SUCCEEDED.value
            and (self.disable, self.install, self.enable) == (1, 1, 1)
            and self.second_exit == 0
        )

    def line(self) -> str:
        return (
            f"crash-matrix boundary={self.boundary:<14} killed={self.killed!s:<5} "
            f"final={self.final:<10} disable={self.disable} install={self.install} "
            f"enable={self.enable} second_worker_exit={self.second_exit} "
            f"took={self.seconds:.1f}s"
        )


async def start_worker(
    prefix: str, tmp: Path, redis_url: str, name: str, kill_at: str | None
) -> asyncio.subprocess.Process:
    python = PYTHON if PYTHON.exists() else Path(sys.executable)
    args = ["-m", "tests.engine.crash_worker", "--prefix", prefix, "--redis-url", redis_url]
    args += ["--inventory-dir", str(tmp), "--name", name]
    if kill_at:
        args += ["--kill-at", kill_at]
    with (tmp / f"{name}.log").open("wb") as log:  # the child keeps its own descriptor
        return await asyncio.create_subprocess_exec(
            str(python), *args, cwd=str(ROOT), stdout=log, stderr=log
        )


async def one_run(boundary: str, base: str, tmp: Path, redis_url: str) -> Run:
    t0 = time.monotonic()
    prefix = f"{base}{boundary.replace(':', '-')}:"
    keys = Keys(prefix)
    settings = crash_settings(prefix, tmp)
    redis = make_redis(redis_url)
    try:
        svc = redis_service(redis, settings, make_inventory(tmp), SystemClock(), keys)
        job, _ = await svc.create_job(UpgradeRequest("east", REQUESTER, "C1"))
        first = await start_worker(prefix, tmp, redis_url, "w1", boundary)
        waiter = asyncio.create_task(first.wait())
        await approve_until(svc, job.id, lambda j: waiter.done() or j.settled, PHASE_TIMEOUT)
        if not waiter.done():
            # Killed at the last boundary, the worker dies just after the job settled: give
            # it that moment. Signalling a process that has died but is not yet reaped
            # reaps it behind asyncio's back (returncode 255 instead of -SIGKILL).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(waiter), 5)
        if not waiter.done():
            first.send_signal(signal.SIGTERM)
        rc1 = await waiter
        second = await start_worker(prefix, tmp, redis_url, "w2", None)
        done = await approve_until(svc, job.id, lambda j: j.settled, PHASE_TIMEOUT)
        await worker_started(tmp / "w2.log", 10)
        second.send_signal(signal.SIGTERM)
        try:
            rc2: int | None = await asyncio.wait_for(second.wait(), 10)
        except TimeoutError:
            second.kill()
            rc2 = None
        raw = await redis.get(fake_key(keys, "east"))
        fake = FakeCluster.restore(json.loads(raw), SystemClock())
        logins = [c["arg"] for c in fake.calls if c["method"] == "set_login_permission"]
        return Run(
            boundary=boundary,
            killed=rc1 == -signal.SIGKILL,
            final=done.state.value,
            disable=logins.count("enabled=False"),
            install=fake.count("install"),
            enable=logins.count("enabled=True"),
            second_exit=rc2,
            seconds=time.monotonic() - t0,
        )
    finally:
        await redis.aclose()


@pytest.mark.slow
@pytest.mark.timeout(110)
async def test_crash_matrix(
    redis: aioredis.Redis, prefix: str, redis_url: str, tmp_path: Path
) -> None:
    t0 = time.monotonic()
    gate = asyncio.Semaphore(6)  # two cores: keep the workers' real-time waits honest

    dirs = {b: tmp_path / b.replace(":", "-") for b in BOUNDARIES + MID_STEP}
    for d in dirs.values():
        d.mkdir()

    async def limited(b: str) -> Run:
        async with gate:
            return await one_run(b, prefix, dirs[b], redis_url)

    runs = await asyncio.gather(*(limited(b) for b in BOUNDARIES + MID_STEP))
    for run in runs:
        print(run.line())
    matrix, extra = runs[: len(BOUNDARIES)], runs[len(BOUNDARIES) :]
    ok, ok_extra = sum(r.finished for r in matrix), sum(r.finished for r in extra)
    print(
        f"crash-matrix: {ok} of {len(matrix)} runs finished; mid-step kills: {ok_extra} of "
        f"{len(extra)}; {time.monotonic() - t0:.1f}s"
    )
    assert ok + ok_extra == len(runs), "\n".join(r.line() for r in runs if not r.finished)
