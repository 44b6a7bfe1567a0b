"""How each escalation webhook call of a job ended: `dedupe:page:<job id>:<action>`.

One marker per job and action (`trigger`, `resolve`), written once (`SET NX`) with the
outcome (`sent`, `skipped`, `failed`): the first outcome stands, so a webhook is called
successfully at most once per job and action, whichever worker tries. Markers outlive the
retries by far and then expire.
"""

from __future__ import annotations

from typing import cast

import redis.asyncio as aioredis

from jobs.store.keys import Keys

MARK_TTL_SECONDS = 14 * 86400


class PageMarks:
    """The page outcome markers of one key prefix (`jobs.worker.pager.Marks`)."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, ttl: int = MARK_TTL_SECONDS) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl = ttl

    def _key(self, job_id: str, action: str) -> str:
        return self.keys.dedupe(f"page:{job_id}:{action}")

    async def outcome(self, job_id: str, action: str) -> str | None:
        """How the call ended (`sent`, `skipped`, `failed`), or None while it has not."""
        return cast(str | None, await self.redis.get(self._key(job_id, action)))

    async def settle(self, job_id: str, action: str, outcome: str) -> bool:
        """Record how the call ended, unless an outcome is recorded already; True if first."""
        return bool(await self.redis.set(self._key(job_id, action), outcome, nx=True,
                                         ex=self.ttl))
