"""The per-user sliding window behind PPS_USER_UPGRADES_PER_HOUR (issue 9, item 7), on the
real Redis with a FakeClock."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from jobs.store.keys import Keys
from jobs.store.rate_limit import WINDOW_SECONDS, RateLimiter
from tests.fakes.clock import FakeClock


async def test_the_window_slides_and_a_slot_frees_an_hour_after_its_request(
    redis: aioredis.Redis, keys: Keys, clock: FakeClock
) -> None:
    limiter = RateLimiter(redis, keys, clock)
    t0 = clock.now()
    for i in range(3):
        assert await limiter.take("U1", f"r{i}", 3) is None
        clock.advance(60)
    assert await limiter.take("U1", "r3", 3) == t0 + WINDOW_SECONDS  # when r0 leaves
    assert await limiter.take("U2", "r3", 3) is None  # per user
    clock.advance(WINDOW_SECONDS - 3 * 60 - 1)
    assert await limiter.take("U1", "r4", 3) is not None
    clock.advance(1)
    assert await limiter.take("U1", "r5", 3) is None  # r0 has left the window
    assert await limiter.take("U1", "r6", 3) == t0 + 60 + WINDOW_SECONDS


async def test_a_request_counted_once_is_let_through_again_and_refunds_free_a_slot(
    redis: aioredis.Redis, keys: Keys, clock: FakeClock
) -> None:
    limiter = RateLimiter(redis, keys, clock)
    assert await limiter.take("U1", "trigger-a", 2) is None
    assert await limiter.take("U1", "trigger-a", 2) is None  # the same delivery again
    assert await limiter.take("U1", "trigger-b", 2) is None
    assert await limiter.take("U1", "trigger-c", 2) is not None
    await limiter.give_back("U1", "trigger-b")
    assert await limiter.take("U1", "trigger-c", 2) is None
    ttl = int(await redis.pttl(keys.upgrades_by("U1")))
    assert 0 < ttl <= WINDOW_SECONDS * 1000  # an idle user leaves nothing behind


async def test_concurrent_requests_cannot_overshoot_the_limit(
    redis: aioredis.Redis, keys: Keys, clock: FakeClock
) -> None:
    limiter = RateLimiter(redis, keys, clock)
    got = await asyncio.gather(*(limiter.take("U1", f"r{i}", 5) for i in range(20)))
    assert sum(1 for g in got if g is None) == 5
