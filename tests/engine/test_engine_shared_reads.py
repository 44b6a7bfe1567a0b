"""Concurrent identical reads of the ack path share one Redis read (`jobs.shared_reads`),
and no caller gets an answer older than a read of its own would be."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from jobs.rules.model import Job
from jobs.service import JobService, UpgradeRequest
from jobs.shared_reads import FreshReads
from tests.engine.engine_support import REQUESTER


class Gated:
    """A read that returns the value current when it began, once released."""

    def __init__(self) -> None:
        self.value = 0
        self.began: list[int] = []
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self) -> int:
        seen = self.value
        self.began.append(seen)
        self.started.set()
        await self.release.wait()
        return seen


async def test_callers_during_a_read_share_the_next_read_not_the_one_under_way() -> None:
    reads: FreshReads[int] = FreshReads()
    read = Gated()
    first = asyncio.ensure_future(reads.read("k", read))
    await read.started.wait()
    read.value = 1  # a write the later callers have seen acknowledged
    later = [asyncio.ensure_future(reads.read("k", read)) for _ in range(10)]
    await asyncio.sleep(0)
    read.release.set()
    assert await first == 0
    assert await asyncio.gather(*later) == [1] * 10  # fresh: never the read begun before
    assert read.began == [0, 1]  # eleven callers, two reads


async def test_a_failed_read_fails_its_callers_only_and_a_cancelled_caller_cancels_nothing(
) -> None:
    reads: FreshReads[int] = FreshReads()
    release = asyncio.Event()

    async def boom() -> int:
        await release.wait()
        raise RuntimeError("redis down")

    read = Gated()
    failing = asyncio.ensure_future(reads.read("k", boom))
    await asyncio.sleep(0)
    gone = asyncio.ensure_future(reads.read("k", read))  # queued behind the failing read
    kept = asyncio.ensure_future(reads.read("k", read))
    await asyncio.sleep(0)
    gone.cancel()
    release.set()
    with pytest.raises(RuntimeError):
        await failing
    await read.started.wait()
    read.release.set()
    assert await kept == 0 and read.began == [0]
    other = Gated()
    other.release.set()
    assert await reads.read("other", other) == 0  # keys are apart


class ManyCounter:
    """Counts `JobStore.many` calls (one per Redis read of job records)."""

    def __init__(self, service: JobService, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = service.store.many

        async def many(ids: Any) -> list[Job]:
            self.calls += 1
            return await real(ids)

        monkeypatch.setattr(service.store, "many", many)


async def test_concurrent_listings_read_the_jobs_at_most_twice(
    service: JobService, monkeypatch: pytest.MonkeyPatch
) -> None:
    job, _ = await service.create_job(UpgradeRequest(cluster="solo", requester=REQUESTER,
                                                     channel="C1"))
    count = ManyCounter(service, monkeypatch)
    lists = await asyncio.gather(*(service.list_active() for _ in range(30)))
    assert all([j.id for j in got] == [job.id] for got in lists)
    assert count.calls <= 2, f"{count.calls} reads of the active jobs for 30 callers"
    count.calls = 0
    pages = await asyncio.gather(*(service.history(None, limit=20) for _ in range(30)),
                                 *(service.history("solo", limit=1) for _ in range(30)))
    assert all([j.id for j in got] == [job.id] for got in pages)
    assert count.calls <= 4  # two per distinct listing
    lists[0].clear()  # each caller has its own list
    assert [j.id for j in lists[1]] == [job.id]


async def test_a_job_created_while_a_listing_is_read_is_in_the_next_callers_listing(
    service: JobService, monkeypatch: pytest.MonkeyPatch
) -> None:
    started, release = asyncio.Event(), asyncio.Event()
    real = service.store.active_ids

    async def slow_ids() -> list[str]:
        ids = await real()
        started.set()
        await release.wait()
        return ids

    monkeypatch.setattr(service.store, "active_ids", slow_ids)
    before = asyncio.ensure_future(service.list_active())
    await started.wait()  # that read has its ids: it cannot see a job made now
    job, _ = await service.create_job(UpgradeRequest(cluster="solo", requester=REQUESTER,
                                                     channel="C1"))
    after = asyncio.ensure_future(service.list_active())  # asked once the job was acked
    await asyncio.sleep(0)
    release.set()
    assert await before == []
    assert [j.id for j in await after] == [job.id]
