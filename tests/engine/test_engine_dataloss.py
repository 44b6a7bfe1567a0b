"""The data-loss guard: a vanished or replaced epoch marker reports the jobs last in flight."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from engine_support import Stubs, crash_settings

from jobs.config.clock import SystemClock
from jobs.config.inventory import Inventory
from jobs.service import JobService, UpgradeRequest
from jobs.store.dataloss import DataLossGuard
from jobs.store.keys import Keys
from jobs.store.redis_client import make_redis
from jobs.store.wiring import redis_service
from jobs.worker import process as worker_mod
from jobs.worker.process import Worker
from tests.fakes.clock import FakeClock

REQUESTER = "U_REQ"


async def _wipe(redis: aioredis.Redis, keys: Keys) -> None:
    """What a Redis restart without persistence does to this prefix."""
    async for key in redis.scan_iter(match=f"{keys.prefix}*", count=500):
        await redis.delete(key)


async def test_no_loss_while_the_marker_stays(
    redis: aioredis.Redis, keys: Keys, clock: FakeClock, service: JobService
) -> None:
    a, b = DataLossGuard(redis, keys, clock), DataLossGuard(redis, keys, clock)
    assert await a.tick() is None and await b.tick() is None  # one writes it, both see it
    await service.create_job(UpgradeRequest("solo", REQUESTER, "C1"))
    assert await a.tick() is None and await b.tick() is None
    assert await redis.get(keys.epoch) is not None


async def test_a_wipe_reports_the_jobs_in_flight_once(
    redis: aioredis.Redis, keys: Keys, clock: FakeClock, service: JobService
) -> None:
    worker, bot = DataLossGuard(redis, keys, clock), DataLossGuard(redis, keys, clock)
    job, _ = await service.create_job(UpgradeRequest("east", REQUESTER, "C1"))
    # Pretend the job got past step 5: logins are disabled on east.
    await redis.hset(keys.job(job.id), mapping={"logins_disabled": "1", "step": "install"})
    assert await worker.tick() is None and await bot.tick() is None
    await _wipe(redis, keys)

    loss = await worker.tick()  # re-creates the marker...
    assert loss is not None
    assert [(j.job_id, j.cluster, j.step) for j in loss.jobs] == [(job.id, "east", "install")]
    assert loss.locked_out == loss.jobs
    assert "USER LOGINS ARE DISABLED" in loss.text() and job.id in loss.text()
    other = await bot.tick()  # ...which the other process sees as replaced: it reports too
    assert other is not None and other.jobs == loss.jobs
    assert await worker.tick() is None and await bot.tick() is None  # once per loss


async def test_a_wipe_with_nothing_in_flight_still_says_so(
    redis: aioredis.Redis, keys: Keys, clock: FakeClock
) -> None:
    guard = DataLossGuard(redis, keys, clock)
    assert await guard.tick() is None
    await _wipe(redis, keys)
    loss = await guard.tick()
    assert loss is not None and loss.jobs == () and "No job was in flight" in loss.text()


async def test_a_running_worker_logs_the_loss_as_an_error(
    redis: aioredis.Redis,
    keys: Keys,
    prefix: str,
    tmp_path: Path,
    inventory: Inventory,
    stubs: Stubs,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    errors: list[dict[str, Any]] = []

    class _Log:
        def error(self, event: str, **kw: Any) -> None:
            errors.append({"event": event, **kw})

        def __getattr__(self, _level: str) -> Any:
            return lambda *a, **k: None

    monkeypatch.setattr(worker_mod, "log", _Log())
    settings = crash_settings(prefix, tmp_path)
    client = make_redis(redis_url)
    w = Worker(client, settings, inventory, steps=stubs.registry(), name="w", keys=keys)
    task = asyncio.create_task(w.run())
    try:
        svc = redis_service(redis, settings, inventory, SystemClock(), keys)
        job, _ = await svc.create_job(UpgradeRequest("solo", REQUESTER, "C1", at=time.time() + 600))
        for _ in range(100):  # the guard has seen the marker and the scheduled job
            if w.guard._last:
                break
            await asyncio.sleep(0.05)
        await _wipe(redis, keys)
        for _ in range(100):
            if errors:
                break
            await asyncio.sleep(0.05)
        assert [e["event"] for e in errors] == ["redis lost its data"]
        assert errors[0]["jobs"] == [job.id] and job.id in errors[0]["message"]
    finally:
        w.stop()
        await task
        await client.aclose()
