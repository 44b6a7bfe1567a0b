"""The fleet view in Redis: each cluster's last poll, the per-cluster poll lock, and the
reads the view needs from the job records (is a cluster busy, its last finished job).

Readings are JSON strings under `Keys.fleet`, kept for `keep_seconds` (a cluster removed
from the inventory ages out). `Keys.fleet_changes` counts readings that differ from the one
before in what a viewer would notice, so the bot can refresh the Home tab without polling
every reading.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import cast

import redis.asyncio as aioredis

from jobs.config.clock import ms
from jobs.fleet.model import ClusterReading
from jobs.rules.model import TERMINAL_STATES, State
from jobs.store import lua
from jobs.store.keys import Keys

KEEP_SECONDS = 7 * 24 * 3600
SCAN_PAGE = 100  # `last_finished`: the first page; the rest of the scan comes in a second
# Job states in which a cluster is left to its job: the job reads it itself (a scheduled job
# has not started; a finished one no longer reads it, even while it keeps the lock).
_QUIET = frozenset({State.SCHEDULED.value, *(s.value for s in TERMINAL_STATES)})


class FleetStore:
    """Read and write the fleet view of one key prefix."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, keep_seconds: float = KEEP_SECONDS):
        self.redis = redis
        self.keys = keys
        self.keep_seconds = keep_seconds
        self._unlock = redis.register_script(lua.UNLOCK_IF_OWNER)

    async def save(self, reading: ClusterReading) -> bool:
        """Store `reading`; True when a viewer would see a change (then `changes` grows)."""
        key = self.keys.fleet(reading.cluster)
        before = await self.load(reading.cluster)
        await self.redis.set(key, reading.to_json(), ex=max(1, round(self.keep_seconds)))
        changed = before is None or before.signature() != reading.signature()
        if changed:
            await self.redis.incr(self.keys.fleet_changes)
        return changed

    async def load(self, cluster: str) -> ClusterReading | None:
        return _parse(cast(str | None, await self.redis.get(self.keys.fleet(cluster))))

    async def load_many(self, clusters: Sequence[str]) -> dict[str, ClusterReading]:
        """The stored readings of `clusters` (missing or unreadable ones left out)."""
        if not clusters:
            return {}
        raws = cast(list[str | None], await self.redis.mget([self.keys.fleet(c) for c in clusters]))
        out = {}
        for name, raw in zip(clusters, raws, strict=True):
            reading = _parse(raw)
            if reading is not None:
                out[name] = reading
        return out

    async def changes(self) -> int:
        """How many times a reading changed (a counter; only its movement matters)."""
        raw = await self.redis.get(self.keys.fleet_changes)
        return int(raw) if raw else 0

    async def lock(self, cluster: str, owner: str, seconds: float) -> bool:
        """Take the cluster's poll lock for `seconds` unless another worker holds it."""
        got = await self.redis.set(self.keys.fleet_lock(cluster), owner, nx=True,
                                   px=max(1, ms(seconds)))
        return bool(got)

    async def unlock(self, cluster: str, owner: str) -> bool:
        """Release the lock if `owner` still holds it."""
        return int(await self._unlock(keys=[self.keys.fleet_lock(cluster)], args=[owner])) == 1

    async def busy(self, cluster: str) -> bool:
        """Does a started, unfinished job hold the cluster (and so read it itself)?"""
        holder = await self.redis.hget(self.keys.cluster(cluster), "job_id")
        if not holder:
            return False
        state = await self.redis.hget(self.keys.job(str(holder)), "state")
        return bool(state) and state not in _QUIET

    async def last_finished(self, clusters: Collection[str], scan: int) -> dict[str, str]:
        """cluster -> id of its newest finished job, among the `scan` newest jobs."""
        want, found = set(clusters), dict[str, str]()
        start = 0
        while want - found.keys() and start < scan:
            # The first page often finds every cluster (a small fleet); if not, the rest of
            # the scan in one page: two round trips, not one per page (a big fleet's clusters
            # are rarely all found, and each trip waits its turn on a busy event loop).
            stop = (min(scan, SCAN_PAGE) if start == 0 else scan) - 1
            ids = cast(list[str], await self.redis.zrevrange(self.keys.history, start, stop))
            if not ids:
                break
            async with self.redis.pipeline(transaction=False) as pipe:
                for job_id in ids:
                    pipe.hmget(self.keys.job(job_id), ["cluster", "state"])
                rows = cast(list[list[str | None]], await pipe.execute())
            for job_id, (cluster, state) in zip(ids, rows, strict=True):
                terminal = state in {s.value for s in TERMINAL_STATES}
                if cluster in want and cluster not in found and terminal:
                    found[cluster] = job_id
            start = stop + 1
        return found


def _parse(raw: str | None) -> ClusterReading | None:
    if not raw:
        return None
    try:
        return ClusterReading.from_json(raw)
    except ValueError:
        return None  # written by another version, or damaged: poll again
