"""Per-user rate limit of upgrade requests (PPS_USER_UPGRADES_PER_HOUR): a sliding window.

Each user has a zset `rate:upgrade:{user}` of the requests counted in the last window
(member = request id, score = when). Taking a slot is one atomic script, so concurrent
requests from one user cannot overshoot; a request id already counted (Slack delivering the
same command again) is let through without a second slot. A request that then creates no
job (refused: busy cluster, unknown version) gives its slot back.
"""

from __future__ import annotations

from typing import cast

import redis.asyncio as aioredis

from jobs.config.clock import Clock, ms
from jobs.store import lua
from jobs.store.keys import Keys

WINDOW_SECONDS = 3600.0


class RateLimiter:
    """The upgrade-request window of every user, under one key prefix."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, clock: Clock) -> None:
        self.redis = redis
        self.keys = keys
        self.clock = clock
        self._take = redis.register_script(lua.RATE_TAKE)

    async def take(self, user: str, request_id: str, limit: int) -> float | None:
        """Count request `request_id` of `user`; None when allowed, else the epoch second
        at which the oldest counted request leaves the window."""
        res = cast(
            list[int],
            await self._take(
                keys=[self.keys.upgrades_by(user)],
                args=[ms(self.clock.now()), ms(WINDOW_SECONDS), limit, request_id],
            ),
        )
        allowed, free_at = int(res[0]), int(res[1])
        return None if allowed == 1 else free_at / 1000.0

    async def give_back(self, user: str, request_id: str) -> None:
        """Un-count a request that created nothing."""
        await self.redis.zrem(self.keys.upgrades_by(user), request_id)
