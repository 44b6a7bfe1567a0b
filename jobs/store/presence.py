"""Worker presence: each worker stamps its name in the `workers` zset on a tick, so the bot
can tell a user that no worker is running (a queued job would otherwise wait silently)."""

from __future__ import annotations

import redis.asyncio as aioredis

from jobs.config.clock import Clock, ms
from jobs.store.keys import Keys

GONE_AFTER_LEASES = 3  # a worker not seen for this many leases counts as gone
FORGET_SECONDS = 24 * 3600  # entries older than this are removed (crashed workers' names)


class Presence:
    """Announce, leave and count the live workers of one key prefix."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, clock: Clock, lease_seconds: float):
        self.redis = redis
        self.keys = keys
        self.clock = clock
        self.lease_seconds = lease_seconds

    async def announce(self, name: str) -> None:
        """Record `name` as alive now (and forget names not seen for a day)."""
        now = self.clock.now()
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self.keys.workers, {name: ms(now)})
            pipe.zremrangebyscore(self.keys.workers, "-inf", ms(now - FORGET_SECONDS))
            await pipe.execute()

    async def leave(self, name: str) -> None:
        """A worker stopping cleanly takes its name out at once."""
        await self.redis.zrem(self.keys.workers, name)

    async def alive(self) -> int:
        """How many workers were seen within the last GONE_AFTER_LEASES leases."""
        since = self.clock.now() - GONE_AFTER_LEASES * self.lease_seconds
        return int(await self.redis.zcount(self.keys.workers, ms(since), "+inf"))
