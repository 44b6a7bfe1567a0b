"""Job leases: `SET NX PX` ownership plus an `INCR` fencing token stored on the job.

Delivery guarantee: a work item may be run by more than one worker over time (at-least-once
delivery); a lease makes them take turns, and the fencing token makes a worker that lost its
lease (paused, partitioned, slow) unable to commit: every job write compares the token.
"""

from __future__ import annotations

import secrets

import redis.asyncio as aioredis

from jobs.config.clock import ms
from jobs.store import lua
from jobs.store.keys import Keys
from jobs.store.ports import LeaseLost as LeaseLost


class Lease:
    """One worker's hold on one job. `fence` is 0 until acquired."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, job_id: str, seconds: float) -> None:
        self.redis = redis
        self.keys = keys
        self.job_id = job_id
        self.seconds = seconds
        self.token = secrets.token_hex(8)
        self.fence = 0
        self._acquire = redis.register_script(lua.LEASE_ACQUIRE)
        self._renew = redis.register_script(lua.LEASE_RENEW)
        self._release = redis.register_script(lua.LEASE_RELEASE)

    async def acquire(self) -> bool:
        """Take the lease if free; on success `fence` is the new fencing token."""
        k = self.keys
        res = await self._acquire(
            keys=[k.lease(self.job_id), k.fence(self.job_id), k.job(self.job_id)],
            args=[self.token, ms(self.seconds)],
        )
        self.fence = int(res)
        return self.fence > 0

    async def renew(self) -> bool:
        """Heartbeat: extend the lease while still its owner, or take it back if it expired
        (Redis away longer than a lease) while the job's fence is still ours."""
        res = await self._renew(
            keys=[self.keys.lease(self.job_id), self.keys.fence(self.job_id)],
            args=[self.token, ms(self.seconds), self._fence_arg],
        )
        return int(res) == 1

    async def release(self) -> bool:
        """Give the lease back (only if still ours); a late heartbeat cannot retake it."""
        res = await self._release(
            keys=[self.keys.lease(self.job_id), self.keys.fence(self.job_id)],
            args=[self.token, self._fence_arg],
        )
        return int(res) == 1

    @property
    def _fence_arg(self) -> str:
        return str(self.fence) if self.fence > 0 else ""


class RedisLeases:
    """Makes `Lease`s of one key prefix (`jobs.store.ports.Leases`)."""

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    def lease(self, job_id: str, seconds: float) -> Lease:
        return Lease(self.redis, self.keys, job_id, seconds)
