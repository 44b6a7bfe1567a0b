"""Durable timers: zset `timers`, member `job_id|kind|token`, score = due time in ms.

Polling, the settle wait, reminders and scheduled starts live here, never in a process.
One Lua script moves due members into the work stream atomically, so any number of workers
may tick at once and each timer fires exactly once into the stream. Delivery guarantee from
there on is the queue's: at-least-once, with side effects fenced (see jobs/store/work_queue.py).
"""

from __future__ import annotations

import secrets
from typing import cast

import redis.asyncio as aioredis

from jobs.config.clock import ms
from jobs.store import lua
from jobs.store.keys import Keys

POLL = "poll"
SETTLE = "settle"
REMINDER = "reminder"
START = "start"
RETRY = "retry"  # a work item put back because another worker held the lease
KINDS: frozenset[str] = frozenset({POLL, SETTLE, REMINDER, START, RETRY})


def member(job_id: str, kind: str, token: str | None = None) -> str:
    """A timer member; a fresh random token unless one is given."""
    return f"{job_id}|{kind}|{token if token is not None else secrets.token_hex(4)}"


def parse_member(m: str) -> tuple[str, str, str]:
    """`job_id|kind|token` -> (job_id, kind, token)."""
    job_id, kind, token = m.split("|", 2)
    return job_id, kind, token


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
