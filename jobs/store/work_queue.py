"""The work queue: stream `queue`, consumer group `workers`, one item = run one step of a job.

Delivery guarantee: at-least-once. An item is acknowledged only after its step committed
(or was found to have nothing to do); an item whose worker died stays pending and is
reclaimed with `XAUTOCLAIM` once idle for about two leases. A duplicate item is harmless:
the lease, the fence and the job's state decide whether there is anything to run.
"""

from __future__ import annotations

from typing import cast

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from jobs.store.keys import WORKER_GROUP, Keys
from jobs.store.ports import WorkItem as WorkItem


def group_lost(exc: ResponseError) -> bool:
    """Redis lost the stream or its group (emptied: restart without persistence, flush).

    NOGROUP answers the next read; a read blocked at that moment gets UNBLOCKED.
    """
    text = str(exc)
    return "NOGROUP" in text or text.startswith("UNBLOCKED")


class WorkQueue:
    """The `queue` stream seen by one consumer of the `workers` group."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, consumer: str) -> None:
        self.redis = redis
        self.keys = keys
        self.consumer = consumer

    async def ensure_group(self) -> None:
        """Create the stream and the group if missing (idempotent)."""
        try:
            await self.redis.xgroup_create(self.keys.queue, WORKER_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def enqueue(self, job_id: str, kind: str = "step", token: str = "") -> str:
        """Add a work item; returns its stream id."""
        entry = await self.redis.xadd(
            self.keys.queue, {"job_id": job_id, "kind": kind, "token": token}
        )
        return str(entry)

    async def read(self, block_ms: int | None, count: int = 1) -> list[WorkItem]:
        """New items for this consumer, waiting up to `block_ms` (None: do not wait).

        Keep `block_ms` below the client's socket timeout (jobs.store.redis_client.BLOCK_MS).
        """
        try:
            resp = await self.redis.xreadgroup(
                WORKER_GROUP, self.consumer, {self.keys.queue: ">"}, count=count, block=block_ms
            )
        except ResponseError as exc:
            if not group_lost(exc):
                raise
            await self.ensure_group()  # Redis lost the group (restart without persistence)
            return []
        streams = cast(list[tuple[str, list[tuple[str, dict[str, str]]]]], resp or [])
        return [WorkItem.from_entry(eid, f) for _, entries in streams for eid, f in entries]

    async def reclaim(self, min_idle_ms: int, count: int = 10) -> list[WorkItem]:
        """Take over items pending longer than `min_idle_ms` (their worker likely died)."""
        try:
            resp = await self.redis.xautoclaim(
                self.keys.queue, WORKER_GROUP, self.consumer, min_idle_ms, "0-0", count=count
            )
        except ResponseError as exc:
            if not group_lost(exc):
                raise
            await self.ensure_group()
            return []
        # resp = [next cursor, [(id, fields), ...], [deleted ids]]
        claimed = resp[1]
        return [WorkItem.from_entry(eid, f) for eid, f in claimed if f]

    async def touch(self, *items: WorkItem) -> None:
        """Reset the items' idle time while they are being worked on, so no one reclaims
        them (one command for all of them)."""
        if items:
            await self.redis.xclaim(
                self.keys.queue, WORKER_GROUP, self.consumer, 0, [i.id for i in items],
                justid=True,
            )

    async def hand_back(self, item: WorkItem) -> None:
        """Give an item this consumer will not run back to the group at once (a stopping
        worker): a fresh copy is queued and the delivered one acknowledged, in one step."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(
                self.keys.queue, {"job_id": item.job_id, "kind": item.kind, "token": item.token}
            )
            pipe.xack(self.keys.queue, WORKER_GROUP, item.id)
            pipe.xdel(self.keys.queue, item.id)
            await pipe.execute()

    async def ack(self, item: WorkItem) -> None:
        """Acknowledge and delete a handled item (keeps the stream short)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(self.keys.queue, WORKER_GROUP, item.id)
            pipe.xdel(self.keys.queue, item.id)
            await pipe.execute()

    async def pending_count(self) -> int:
        """Items delivered and not yet acknowledged (all consumers)."""
        info = await self.redis.xpending(self.keys.queue, WORKER_GROUP)
        return int(info["pending"])
