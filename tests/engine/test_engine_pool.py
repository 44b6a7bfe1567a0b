"""The worker's item pool without Redis: at most `size` items admitted, items of one job in
turn and in order, other jobs alongside; closing lets running items finish and returns the
ones that never started. Plus the queue's hand-back of such an item."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from jobs.store.keys import Keys
from jobs.store.work_queue import WorkItem, WorkQueue
from jobs.worker.pool import ItemPool


class Script:
    """A handle that records overlaps and waits for the test to release each item."""

    def __init__(self) -> None:
        self.running: dict[str, int] = {}  # job id -> items of it running now
        self.most: dict[str, int] = {}
        self.peak = 0
        self.order: list[str] = []
        self.gates: dict[str, asyncio.Event] = {}
        self.errors: list[tuple[str, str]] = []

    async def handle(self, item: WorkItem) -> None:
        self.order.append(item.id)
        self.running[item.job_id] = self.running.get(item.job_id, 0) + 1
        self.most[item.job_id] = max(self.most.get(item.job_id, 0), self.running[item.job_id])
        self.peak = max(self.peak, sum(self.running.values()))
        try:
            await self.gates.setdefault(item.id, asyncio.Event()).wait()
            if item.kind == "boom":
                raise RuntimeError("step bug")
        finally:
            self.running[item.job_id] -= 1

    def failed(self, item: WorkItem, exc: Exception) -> None:
        self.errors.append((item.id, str(exc)))

    def release(self, *ids: str) -> None:
        for i in ids:
            self.gates.setdefault(i, asyncio.Event()).set()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_pool_runs_jobs_side_by_side_and_one_jobs_items_in_turn() -> None:
    s = Script()
    pool = ItemPool(4, s.handle, s.failed)
    items = [WorkItem("1", "A"), WorkItem("2", "B"), WorkItem("3", "A"), WorkItem("4", "C")]
    for it in items:
        assert pool.submit(it)
    assert not pool.submit(WorkItem("1", "A")), "an item admitted twice"
    assert pool.free == 0
    await settle()
    assert sorted(s.order) == ["1", "2", "4"]  # A's second item waits for its first
    assert {i.id for i in pool.running()} == {"1", "2", "4"}
    assert {i.id for i in pool.items()} == {"1", "2", "3", "4"}
    s.release("2")
    await settle()
    assert pool.free == 1 and s.order == ["1", "2", "4"]
    s.release("1")
    await settle()
    assert s.order[-1] == "3"
    s.release("3", "4")
    await settle()
    assert pool.free == 4 and s.most == {"A": 1, "B": 1, "C": 1} and s.peak == 3


async def test_pool_wait_free_returns_when_a_slot_frees_or_on_wake() -> None:
    s = Script()
    pool = ItemPool(1, s.handle, s.failed)
    pool.submit(WorkItem("1", "A"))
    waiter = asyncio.create_task(pool.wait_free())
    await settle()
    assert not waiter.done()
    s.release("1")
    await asyncio.wait_for(waiter, 1)
    pool.submit(WorkItem("2", "A"))
    waiter = asyncio.create_task(pool.wait_free())
    await settle()
    pool.wake()
    await asyncio.wait_for(waiter, 1)
    s.release("2")


async def test_pool_close_lets_running_items_finish_and_returns_the_rest() -> None:
    s = Script()
    pool = ItemPool(8, s.handle, s.failed)
    for it in (WorkItem("1", "A", "boom"), WorkItem("2", "A"), WorkItem("3", "B")):
        pool.submit(it)
    await settle()
    closing = asyncio.create_task(pool.close())
    await settle()
    assert not closing.done(), "running items are not cut short"
    assert not pool.submit(WorkItem("4", "C"))
    s.release("1", "3")
    left = await asyncio.wait_for(closing, 1)
    assert [i.id for i in left] == ["2"]  # queued behind A's first item: never started
    assert s.order == ["1", "3"] and s.errors == [("1", "step bug")]


async def test_hand_back_requeues_a_copy_and_acknowledges_the_delivery(
    redis: aioredis.Redis, keys: Keys
) -> None:
    q = WorkQueue(redis, keys, "w")
    await q.ensure_group()
    await q.enqueue("J-1", "poll", "t")
    (item,) = await q.read(None)
    assert await q.pending_count() == 1
    await q.hand_back(item)
    assert await q.pending_count() == 0
    (again,) = await WorkQueue(redis, keys, "other").read(None)
    assert (again.job_id, again.kind, again.token) == ("J-1", "poll", "t")
    assert again.id != item.id
