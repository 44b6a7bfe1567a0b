"""Durable timers: zset `timers`, member `job_id|kind|token`, score = due time in ms.

Polling, the settle wait, reminders and scheduled starts live here, never in a process.
One Lua script moves due members into the work stream atomically, so any number of workers
may tick at once and each timer fires exactly once into the stream. Delivery guarantee from
there on is the queue's: at-least-once, with side effects fenced (see jobs/store/work_queue.py).
"""

from __future__ import annotations

from typing import cast

import redis.asyncio as aioredis

from jobs.config.clock import ms
from jobs.rules.timer_names import (
    GATE_TIMEOUT,
    KINDS,
    POLL,
    REMINDER,
    RETRY,
    SETTLE,
    START,
    member,
    parse_member,
)
from jobs.store import lua
from jobs.store.keys import Keys

__all__ = [
    "GATE_TIMEOUT",
    "KINDS",
    "POLL",
    "REMINDER",
    "RETRY",
    "SETTLE",
    "START",
    "Timers",
    "member",
    "parse_member",
]


class Timers:
    """The `timers` zset of one key prefix."""

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._release = redis.register_script(lua.RELEASE_TIMERS)

    async def release_due(self, now: float, limit: int = 100) -> int:
        """Move timers due at `now` (epoch seconds) into the work stream; returns how many."""
        n = await self._release(keys=[self.keys.timers, self.keys.queue], args=[ms(now), limit])
        return int(n)

    async def release_all_due(self, now: float, batch: int = 100, max_batches: int = 200) -> int:
        """Release everything due at `now`, `batch` timers per script call (each call holds
        Redis for about a millisecond), up to `max_batches` calls; returns how many. One
        call per tick released 100 timers a second per worker: 1,000 timers due at once
        fired up to 5 s late with two workers (benchmarks/timers_burst.py)."""
        total = 0
        for _ in range(max_batches):
            n = await self.release_due(now, batch)
            total += n
            if n < batch:
                break
        return total

    async def schedule(self, m: str, due: float) -> None:
        """Add (or move) one timer outside a job commit (the lease-busy retry)."""
        await self.redis.zadd(self.keys.timers, {m: ms(due)})

    async def due(self, m: str) -> float | None:
        """When `m` is due (epoch seconds), or None if it is not scheduled."""
        score = await self.redis.zscore(self.keys.timers, m)
        return None if score is None else float(score) / 1000.0

    async def all(self, job_id: str | None = None) -> dict[str, float]:
        """Scheduled timers (optionally of one job): member -> due epoch seconds."""
        items = cast(
            list[tuple[str, float]],
            await self.redis.zrange(self.keys.timers, 0, -1, withscores=True),
        )
        return {
            m: float(s) / 1000.0 for m, s in items if job_id is None or parse_member(m)[0] == job_id
        }
