"""The fleet view's reads from Redis: readings with their change counter, each cluster's
active or scheduled job and its newest finished job."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from jobs.config.inventory import Inventory, parse_inventory
from jobs.config.settings import Settings
from jobs.fleet.model import ClusterReading, NodeReading
from jobs.fleet.view import FleetView
from jobs.service import UpgradeRequest
from jobs.store.fleet import FleetStore
from jobs.store.keys import Keys
from jobs.store.wiring import redis_service
from tests.fakes.clock import FakeClock

OLD, NEW = "9.1R17 (build 27583)", "9.1R18 (build 29865)"


def inventory(tmp: Path, names: list[str]) -> Inventory:
    node = {"username_env": "U", "password_env": "P", "mode": "standalone"}
    return parse_inventory({
        "clusters": {n: {**node, "nodes": [{"name": f"{n}-1", "url": f"https://{n}-1"}]}
                     for n in names},
        "firmware": [{"version": "9.1R18", "file": "a.pkg", "sha256": "0" * 64},
                     {"version": "9.1R17", "file": "b.pkg", "sha256": "1" * 64}],
    }, tmp, env={}, check_files=False, check_env=False)


async def test_save_counts_only_changes_a_viewer_would_notice(
    redis: aioredis.Redis, keys: Keys
) -> None:
    store = FleetStore(redis, keys)
    one = ClusterReading("c", 1.0, (NodeReading("c-1", OLD, None, "standalone"),), True, 5)
    assert await store.save(one) and await store.changes() == 1
    later = ClusterReading("c", 2.0, one.nodes, True, 9)  # new time and sessions only
    assert not await store.save(later) and await store.changes() == 1
    assert (await store.load("c")) == later
    upgraded = ClusterReading("c", 3.0, (NodeReading("c-1", NEW, OLD, "standalone"),), True, 9)
    assert await store.save(upgraded) and await store.changes() == 2
    await redis.set(keys.fleet("d"), "{not json")
    assert await store.load_many(["c", "d", "e"]) == {"c": upgraded}
    assert 0 < await redis.ttl(keys.fleet("c")) <= store.keep_seconds


async def test_facts_join_readings_with_active_and_last_jobs(
    redis: aioredis.Redis, keys: Keys, prefix: str, tmp_path: Path
) -> None:
    clock = FakeClock()
    inv = inventory(tmp_path, ["a", "b", "c"])
    settings = Settings(_env_file=None, PPS_REDIS_PREFIX=prefix)
    service = redis_service(redis, settings, inv, clock, keys)
    store = FleetStore(redis, keys)
    # a: two finished jobs then an active one; b: one finished job; c: never a job.
    first, _ = await service.create_job(UpgradeRequest("a", "U1", "C1"))
    await service.abort(first.id, "U1")
    clock.advance(10)
    second, _ = await service.create_job(UpgradeRequest("a", "U1", "C1"))
    await service.abort(second.id, "U1")
    clock.advance(10)
    active, _ = await service.create_job(UpgradeRequest("a", "U1", "C1", at=clock.now() + 60))
    clock.advance(1)  # the newest job of all (ids are random: a tie would order by id)
    only, _ = await service.create_job(UpgradeRequest("b", "U1", "C1"))
    await service.abort(only.id, "U1")
    await store.save(ClusterReading("b", 5.0, (NodeReading("b-1", OLD, None, "standalone"),),
                                    True, 1))
    facts = await FleetView(store, service, inv, clock, 300.0).facts()
    a, b, c = facts.clusters
    assert (a.active and a.active.id, a.last and a.last.id) == (active.id, second.id)
    assert (b.active, b.last and b.last.id) == (None, only.id)
    assert (c.active, c.last, c.reading) == (None, None, None)
    assert b.reading is not None and b.behind == ["b-1"] and b.attention
    assert not c.attention and facts.newest == "9.1R18" and facts.at == clock.now()
    assert [f.cluster.name for f in facts.marked] == ["b"]
    # Only the newest `scan` jobs are searched: a's last finished one is older than b's.
    narrow = await FleetView(store, service, inv, clock, 300.0, scan=1).facts()
    assert narrow.clusters[0].last is None and narrow.clusters[1].last is not None


async def test_concurrent_callers_share_one_reading(tmp_path: Path) -> None:
    class Jobs:
        def __init__(self) -> None:
            self.reads = 0
            self.release = asyncio.Event()

        async def list_active(self) -> list[Any]:
            self.reads += 1
            await self.release.wait()
            return []

        async def find_many(self, ids: Any) -> list[Any]:
            return []

    class Records:
        async def load_many(self, clusters: Any) -> dict[str, Any]:
            return {}

        async def last_finished(self, clusters: Any, scan: int) -> dict[str, str]:
            return {}

    jobs = Jobs()
    view = FleetView(Records(), jobs, inventory(tmp_path, ["a", "b"]), FakeClock(), 300.0)
    first = asyncio.create_task(view.facts())
    await asyncio.sleep(0)
    gone = asyncio.create_task(view.facts())  # a caller that goes away meanwhile
    others = [asyncio.create_task(view.facts()) for _ in range(8)]
    await asyncio.sleep(0)
    gone.cancel()
    jobs.release.set()
    results = await asyncio.gather(first, *others)
    assert jobs.reads == 1 and all(r is results[0] for r in results)
    assert [c.cluster.name for c in results[0].clusters] == ["a", "b"]
    await view.facts()  # a caller after the reading ended starts a new one
    assert jobs.reads == 2


async def test_last_finished_scans_a_big_history_in_two_round_trips(
    redis: aioredis.Redis, keys: Keys, monkeypatch: Any
) -> None:
    # 450 finished jobs of `busy`, then (older) one of `quiet`; `never` has none, so the
    # whole scan is read. Each round trip waits its turn on a loaded event loop: the pages
    # come in two trips (the first page, then the rest), not one per 100 jobs.
    pipe = redis.pipeline(transaction=False)
    for n in range(451):
        cluster = "quiet" if n == 0 else "busy"
        pipe.hset(keys.job(f"J-{n:04d}"), mapping={"cluster": cluster, "state": "succeeded"})
        pipe.zadd(keys.history, {f"J-{n:04d}": n})
    await pipe.execute()
    pages = 0
    real = redis.zrevrange

    async def zrevrange(*args: Any, **kw: Any) -> Any:
        nonlocal pages
        pages += 1
        return await real(*args, **kw)

    monkeypatch.setattr(redis, "zrevrange", zrevrange)
    store = FleetStore(redis, keys)
    found = await store.last_finished(["busy", "quiet", "never"], 500)
    assert found == {"busy": "J-0450", "quiet": "J-0000"}
    assert pages == 2
    pages = 0
    assert await store.last_finished(["busy"], 500) == {"busy": "J-0450"}
    assert pages == 1  # found in the first page: no more read
    assert await store.last_finished(["busy", "quiet"], 300) == {"busy": "J-0450"}
