"""Who looked at the App Home tab recently, and the per-user publish pace (Redis).

The bot republishes the Home tab for users who opened it recently when a job changes
state; `Keys.home_viewers` remembers them (forgotten after `forget_seconds`), and
`Keys.home_pace` keeps every bot replica to one publish per user per interval.
"""

from __future__ import annotations

from typing import cast

import redis.asyncio as aioredis

from jobs.config.clock import ms
from jobs.store.keys import Keys

FORGET_SECONDS = 7 * 24 * 3600


class HomeViewers:
    """The `home_viewers` zset and the `home_pace` markers of one key prefix."""

    def __init__(
        self, redis: aioredis.Redis, keys: Keys, forget_seconds: float = FORGET_SECONDS
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.forget_seconds = forget_seconds

    async def opened(self, user: str, now: float) -> None:
        """`user` opened the Home tab at `now` (and forget those gone for long)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self.keys.home_viewers, {user: ms(now)})
            pipe.zremrangebyscore(self.keys.home_viewers, "-inf", ms(now - self.forget_seconds))
            await pipe.execute()

    async def since(self, epoch: float) -> list[str]:
        """Users who opened the Home tab at or after `epoch`, most recent first."""
        users = await self.redis.zrevrangebyscore(self.keys.home_viewers, "+inf", ms(epoch))
        return cast(list[str], users)

    async def take_slot(self, user: str, seconds: float) -> bool:
        """May a view be published to `user` now? True at most once per `seconds`."""
        got = await self.redis.set(self.keys.home_pace(user), "1", nx=True,
                                   px=max(1, ms(seconds)))
        return bool(got)

    async def slot_free_in(self, user: str) -> float:
        """Seconds until `take_slot` can succeed for `user` (0 when it can now)."""
        left = int(await self.redis.pttl(self.keys.home_pace(user)))
        return max(0.0, left / 1000)
