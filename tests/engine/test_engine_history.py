"""Bounded history (issue 9, item 7): one cluster's page reads about one page, whatever the
other clusters hold; jobs are indexed per cluster on write, and a deployment whose jobs
predate the index still shows them (indexed once, lazily)."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis

from jobs.rules.model import Job, State, Step
from jobs.service import JobService
from jobs.store.keys import Keys
from jobs.store.wiring import redis_service
from tests.engine.engine_support import Engine
from tests.fakes.clock import FakeClock


def finished(n: int, cluster: str, created: float) -> Job:
    return Job(id=f"J-{n:05d}", cluster=cluster, target="9.1R18", requester="UREQ",
               state=State.SUCCEEDED, step=Step.VERIFY, created_at=created,
               updated_at=created, finished_at=created)


async def old_deployment(redis: aioredis.Redis, keys: Keys, clock: FakeClock,
                         layout: list[str]) -> list[Job]:
    """Finished jobs as a deployment before the per-cluster index holds them (the hash and
    the global `history` zset only), one a minute, oldest first."""
    jobs = [finished(n, c, clock.now() - (len(layout) - n) * 60.0)
            for n, c in enumerate(layout, 1)]
    pipe = redis.pipeline(transaction=False)
    for j in jobs:
        pipe.hset(keys.job(j.id), mapping=j.to_hash())
        pipe.zadd(keys.history, {j.id: int(j.created_at * 1000)})
    await pipe.execute()
    return jobs


class ReadCounter:
    """Counts the job records `JobStore.many` is asked for."""

    def __init__(self, service: JobService, monkeypatch: pytest.MonkeyPatch) -> None:
        self.ids = 0
        real = service.store.many

        async def many(ids: Any) -> list[Job]:
            ids = list(ids)
            self.ids += len(ids)
            return await real(ids)

        monkeypatch.setattr(service.store, "many", many)


async def test_a_quiet_clusters_history_reads_one_page_not_everyone_elses(
    service: JobService, redis: aioredis.Redis, keys: Keys, clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # solo has the 3 oldest of 600 jobs; the rest belong to east and mesh.
    layout = ["solo"] * 3 + ["east", "mesh"] * 300
    jobs = await old_deployment(redis, keys, clock, layout)
    await service.index.ensure_indexed()  # the one-time migration, not what is measured here
    reads = ReadCounter(service, monkeypatch)
    got = await service.history("solo", limit=20)
    assert [j.id for j in got] == [j.id for j in reversed(jobs[:3])]
    assert reads.ids <= 20, f"read {reads.ids} job records for one page of 3"
    reads.ids = 0
    east = await service.history("east", limit=20)
    assert len(east) == 20 and {j.cluster for j in east} == {"east"}
    assert [j.id for j in east] == [j.id for j in reversed(jobs) if j.cluster == "east"][:20]
    assert reads.ids <= 20


async def test_an_existing_deployments_history_still_shows_indexed_once(
    service: JobService, redis: aioredis.Redis, keys: Keys, clock: FakeClock,
) -> None:
    jobs = await old_deployment(redis, keys, clock, ["solo", "east", "solo", "mesh"])
    assert await redis.exists(keys.cluster_history("solo")) == 0  # as before the index
    got = await service.history("solo")
    assert [j.id for j in got] == [jobs[2].id, jobs[0].id]
    assert await redis.get(keys.history_indexed) == "1"
    assert await redis.zrange(keys.cluster_history("mesh"), 0, -1) == [jobs[3].id]
    # Another process (no in-memory flag) sees the marker and does not walk again.
    other = redis_service(redis, service.settings, service.inventory, clock, keys)
    assert await other.index.ensure_indexed() == 0
    assert [j.id for j in await other.history("east")] == [jobs[1].id]


async def test_new_jobs_are_indexed_per_cluster_when_created(
    engine: Engine, redis: aioredis.Redis, keys: Keys
) -> None:
    a = await engine.create("solo", dry_run=True)
    engine.clock.advance(1)  # ids are random: jobs created at one instant would order by id
    b = await engine.create("east", dry_run=True)
    await engine.drain()
    engine.clock.advance(1)
    c = await engine.create("solo", dry_run=True)
    assert await redis.zrange(keys.cluster_history("solo"), 0, -1) == [a.id, c.id]
    assert await redis.zrange(keys.cluster_history("east"), 0, -1) == [b.id]
    assert [j.id for j in await engine.service.history("solo")] == [c.id, a.id]
    assert [j.id for j in await engine.service.history()] == [c.id, b.id, a.id]


async def test_history_skips_records_that_expired_before_the_index_was_trimmed(
    service: JobService, redis: aioredis.Redis, keys: Keys, clock: FakeClock,
) -> None:
    jobs = await old_deployment(redis, keys, clock, ["solo"] * 30)
    await service.index.ensure_indexed()
    for j in jobs[10:25]:  # gone from Redis, entries still in the zsets
        await redis.delete(keys.job(j.id))
    got = await service.history("solo", limit=12)
    want = [j.id for j in reversed(jobs[25:])] + [j.id for j in reversed(jobs[:10])]
    assert [j.id for j in got] == want[:12]
