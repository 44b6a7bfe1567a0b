"""Worker presence: a running worker is counted, a stopped one leaves at once, a crashed one
ages out after three leases (fake clock), and old names are forgotten."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from jobs.store.keys import Keys
from jobs.store.presence import FORGET_SECONDS, GONE_AFTER_LEASES, Presence
from jobs.worker.process import Worker
from tests.fakes import FakeClock


async def test_presence_counts_recent_workers_only(redis: aioredis.Redis, keys: Keys) -> None:
    clock = FakeClock()
    p = Presence(redis, keys, clock, lease_seconds=30)
    assert await p.alive() == 0
    await p.announce("w1")
    await p.announce("w2")
    assert await p.alive() == 2
    clock.advance(GONE_AFTER_LEASES * 30 - 1)
    await p.announce("w2")
    assert await p.alive() == 2
    clock.advance(2)  # w1 was last seen more than three leases ago: crashed, not counted
    assert await p.alive() == 1
    await p.leave("w2")
    assert await p.alive() == 0
    clock.advance(FORGET_SECONDS)
    await p.announce("w3")  # announcing forgets names not seen for a day
    assert await redis.zrange(keys.workers, 0, -1) == ["w3"]


async def test_a_running_worker_is_seen_and_leaves_when_stopped(
    redis: aioredis.Redis, keys: Keys, stub_worker: Worker
) -> None:
    w = stub_worker
    task = asyncio.create_task(w.run())
    try:
        for _ in range(500):  # up to 10 s
            if await redis.zscore(keys.workers, w.name) is not None:
                break
            await asyncio.sleep(0.02)
        assert await redis.zscore(keys.workers, w.name) is not None
        assert await w.presence.alive() == 1
    finally:
        w.stop()
        await asyncio.wait_for(task, 10)
    assert await redis.zscore(keys.workers, w.name) is None
