"""The job history index: the global `history` zset and one `history:{cluster}` per cluster.

Both are written with the job by the create script (index on write), so a cluster's history
page is one `ZREVRANGE` of its own zset, whatever the other clusters hold. Jobs made before
the per-cluster zsets existed are indexed once, lazily, by the first reader
(`ensure_indexed`: a pipelined walk of the global zset, then the `history_indexed` marker).
Entries whose job record expired (PPS_RETENTION_DAYS) are dropped by `trim`, which the
service runs after each job it creates.
"""

from __future__ import annotations

from typing import cast

import redis.asyncio as aioredis

from jobs.config.clock import ms
from jobs.store import lua
from jobs.store.keys import Keys

BACKFILL_CHUNK = 1000  # global-history entries read per round trip while indexing
TRIM_EXAMINED = 200  # old entries looked at per zset per trim


class HistoryIndex:
    """Reads and upkeep of the history zsets of one key prefix."""

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._trim = redis.register_script(lua.TRIM_HISTORY)
        self._indexed = False  # the marker was seen: no need to read it again

    def _key(self, cluster: str | None) -> str:
        return self.keys.history if cluster is None else self.keys.cluster_history(cluster)

    async def ids(self, cluster: str | None, start: int, stop: int) -> list[str]:
        """Job ids newest first, by rank, of one cluster (or of all when None)."""
        if cluster is not None:
            await self.ensure_indexed()
        return cast(list[str], await self.redis.zrevrange(self._key(cluster), start, stop))

    async def ensure_indexed(self) -> int:
        """Index, once, the jobs made before the per-cluster zsets existed; how many were
        (re)indexed by this call. Safe to run concurrently: adding an entry is idempotent."""
        if self._indexed:
            return 0
        if await self.redis.exists(self.keys.history_indexed):
            self._indexed = True
            return 0
        done, start = 0, 0
        while True:
            chunk = cast(
                list[tuple[str, float]],
                await self.redis.zrange(
                    self.keys.history, start, start + BACKFILL_CHUNK - 1, withscores=True
                ),
            )
            if not chunk:
                break
            pipe = self.redis.pipeline(transaction=False)
            for job_id, _ in chunk:
                pipe.hget(self.keys.job(job_id), "cluster")
            clusters = cast(list[str | None], await pipe.execute())
            pipe = self.redis.pipeline(transaction=False)
            for (job_id, score), cluster in zip(chunk, clusters, strict=True):
                if cluster:  # an expired job needs no entry
                    pipe.zadd(self.keys.cluster_history(cluster), {job_id: score})
                    done += 1
            await pipe.execute()
            start += BACKFILL_CHUNK
        await self.redis.set(self.keys.history_indexed, "1")
        self._indexed = True
        return done

    async def trim(self, cluster: str, now: float, retention: float) -> int:
        """Drop entries (global and `cluster`'s) of jobs created before `now - retention`
        whose record has expired; how many were dropped."""
        cutoff = ms(now - retention)
        keys = [self.keys.history, self.keys.cluster_history(cluster)]
        return int(await self._trim(keys=keys, args=[self.keys.job(""), cutoff, TRIM_EXAMINED]))
