"""Job creation, the cluster lock, idempotency, and the fenced compare-and-set commit."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import pytest
import redis.asyncio as aioredis

from jobs.config.inventory import Inventory
from jobs.config.settings import Settings
from jobs.rules.change import Change
from jobs.rules.errors import ClusterBusy, EngineError, UnknownCluster, UnknownJob
from jobs.rules.events import EventKind
from jobs.rules.model import State, Step
from jobs.rules.transitions import clone
from jobs.service import JobService, UpgradeRequest, new_job_id
from jobs.store.keys import Keys
from jobs.store.lease import Lease
from jobs.store.wiring import redis_service
from tests.engine.engine_support import APPROVER, OTHER, REQUESTER, Engine
from tests.fakes import FakeClock


def req(cluster: str = "solo", **kw: Any) -> UpgradeRequest:
    return UpgradeRequest(cluster=cluster, requester=REQUESTER, channel="C1", **kw)


ID_RE = re.compile(r"^J-(\d{6}-\d{4})-[0-9A-HJKMNP-TV-Z]{4}$")  # within [A-Za-z0-9-]{1,24}


async def test_ids_carry_the_time_and_target_defaults_to_newest(
    service: JobService, clock: FakeClock
) -> None:
    a, created_a = await service.create_job(req("solo"))
    b, created_b = await service.create_job(req("east", target="9.1R17"))
    minute = time.strftime("%y%m%d-%H%M", time.gmtime(clock.now()))
    for job in (a, b):
        m = ID_RE.match(job.id)
        assert m and m.group(1) == minute and len(job.id) <= 24, job.id
    assert a.id != b.id
    assert created_a and created_b
    assert a.target == "9.1R18" and b.target == "9.1R17"
    assert a.state is State.QUEUED and a.step is Step.PREFLIGHT and a.channel == "C1"


async def test_idempotency_key_returns_the_same_job(service: JobService) -> None:
    first, created = await service.create_job(req(idempotency_key="trigger-1"))
    again, created_again = await service.create_job(req(idempotency_key="trigger-1"))
    assert created and not created_again
    assert again.id == first.id
    assert len(await service.list_active()) == 1


async def test_second_job_on_a_busy_cluster_is_refused_naming_the_holder(
    service: JobService, redis: aioredis.Redis, keys: Keys
) -> None:
    job, _ = await service.create_job(req("east"))
    with pytest.raises(ClusterBusy) as exc:
        await service.create_job(UpgradeRequest(cluster="east", requester=OTHER, channel="C1"))
    assert exc.value.job_id == job.id and exc.value.requester == REQUESTER
    assert job.id in exc.value.message and REQUESTER in exc.value.message
    assert await redis.hgetall(keys.cluster("east")) == {"job_id": job.id, "requester": REQUESTER}
    assert [j.id for j in await service.list_active()] == [job.id]  # no job created
    other, _ = await service.create_job(req("mesh"))  # other clusters are free
    assert other.id not in (job.id, "") and other.cluster == "mesh"


async def test_job_ids_never_repeat_after_redis_loses_its_data(
    service: JobService, redis: aioredis.Redis, prefix: str
) -> None:
    seen: list[str] = []
    for _ in range(3):
        job, _created = await service.create_job(req("solo"))
        seen.append(job.id)
        # Redis comes back empty: every key of this installation is gone.
        lost = [k async for k in redis.scan_iter(match=prefix + "*")]
        assert lost
        await redis.delete(*lost)
    assert len(set(seen)) == 3, seen


async def test_an_id_already_in_use_is_never_given_twice(
    service: JobService, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = await service.create_job(req("solo"))
    ids = iter([first.id, first.id, "J-FRESH"])
    monkeypatch.setattr("jobs.service.new_job_id", lambda _now: next(ids))
    second, created = await service.create_job(req("east"))
    assert created and second.id == "J-FRESH" and second.cluster == "east"
    assert (await service.get(first.id)).cluster == "solo"  # the first job is untouched
    monkeypatch.setattr("jobs.service.new_job_id", lambda _now: first.id)
    with pytest.raises(EngineError, match="job id"):
        await service.create_job(req("mesh"))
    assert await service.active_for_cluster("mesh") is None


def test_new_job_ids_are_short_readable_and_random() -> None:
    ids = {new_job_id(1_800_000_000.0) for _ in range(1000)}
    assert all(i.startswith("J-270115-0800-") and ID_RE.match(i) for i in ids)
    assert len(ids) > 990  # 20 random bits: a few collisions at most


async def test_scheduled_jobs_take_the_lock_too(service: JobService, clock: FakeClock) -> None:
    job, _ = await service.create_job(req("solo", at=clock.now() + 3600))
    assert job.state is State.SCHEDULED and job.scheduled_at == clock.now() + 3600
    with pytest.raises(ClusterBusy):
        await service.create_job(req("solo"))


async def test_unknown_cluster_and_version(service: JobService) -> None:
    with pytest.raises(UnknownCluster):
        await service.create_job(req("nowhere"))
    with pytest.raises(EngineError) as exc:
        await service.create_job(req("solo", target="9.1R99"))
    assert "9.1R99" in exc.value.message and "9.1R18" in exc.value.message
    with pytest.raises(UnknownJob):
        await service.get("J-9999")
    assert await service.list_active() == []


async def test_created_event_and_audit(service: JobService) -> None:
    job, _ = await service.create_job(req(dry_run=True))
    events = await service.store.events(job.id)
    assert [(e.kind, e.seq) for e in events] == [(EventKind.CREATED, 1)]
    assert events[0].data == {"dry_run": True, "scheduled_at": None}
    audit = await service.store.audit_entries(job.id)
    assert [(a["actor"], a["action"]) for a in audit] == [(REQUESTER, "create")]


async def test_commit_with_a_stale_fence_is_refused(
    service: JobService, redis: aioredis.Redis, keys: Keys
) -> None:
    job, _ = await service.create_job(req())
    old = Lease(redis, keys, job.id, 0.05)
    assert await old.acquire()
    stale = await service.store.load(job.id)
    assert stale is not None and stale.job.fence == old.fence
    await asyncio.sleep(0.1)  # the lease expires; a second worker takes over
    new = Lease(redis, keys, job.id, 30)
    assert await new.acquire() and new.fence == old.fence + 1
    moved = clone(stale.job)
    moved.state = State.RUNNING
    assert not await service.store.commit(stale, moved, Change())
    assert not await old.renew()  # the heartbeat of the old owner fails too
    assert (await service.get(job.id)).state is State.QUEUED
    fresh = await service.store.load(job.id)
    assert fresh is not None
    moved = clone(fresh.job)
    moved.state = State.RUNNING
    assert await service.store.commit(fresh, moved, Change())
    assert (await service.get(job.id)).state is State.RUNNING


async def test_commit_writes_only_changed_fields(service: JobService) -> None:
    """The notifier's card/gate ts written between read and commit survive the commit."""
    job, _ = await service.create_job(req())
    snap = await service.store.load(job.id)
    assert snap is not None
    await service.set_card(job.id, "C9", "1700000000.000100")
    new = clone(snap.job)
    new.outputs.aborted_by = "U1"
    assert await service.store.commit(snap, new, Change(), expect=("state", "step"))
    after = await service.get(job.id)
    assert after.card_ts == "1700000000.000100" and after.channel == "C9"
    assert after.outputs.dump() == {"aborted_by": "U1"}


async def test_set_gate_message_is_kept_across_engine_writes(engine: Engine) -> None:
    job = await engine.create()
    await engine.drain()
    gate = await engine.gate(job.id)
    await engine.service.set_gate_message(job.id, gate, "1700000000.000200")
    await engine.service.approve(job.id, gate, APPROVER)
    await engine.drain()
    after = await engine.job(job.id)
    decided = after.gate(gate)
    assert decided is not None and decided.message_ts == "1700000000.000200"
    assert decided.decided_by == APPROVER
    with pytest.raises(UnknownJob):
        await engine.service.set_card("J-4242", "C1", "1.2")
    with pytest.raises(UnknownJob):
        await engine.service.set_gate_message("J-4242", gate, "1.2")


async def test_history_and_active_lists(service: JobService, clock: FakeClock) -> None:
    a, _ = await service.create_job(req("solo"))
    clock.advance(1)
    b, _ = await service.create_job(req("east"))
    await service.abort(a.id, REQUESTER)
    assert [j.id for j in await service.list_active()] == [b.id]
    assert [j.id for j in await service.history()] == [b.id, a.id]
    assert [j.id for j in await service.history("solo")] == [a.id]
    assert (await service.active_for_cluster("east")) == await service.get(b.id)
    assert await service.active_for_cluster("solo") is None


async def test_audit_is_trimmed_but_never_below_pps_audit_keep(
    redis: aioredis.Redis, settings: Settings, inventory: Inventory, clock: FakeClock, keys: Keys
) -> None:
    """PPS_AUDIT_KEEP is the audit stream's floor: trimmed approximately, never below it."""
    small = settings.model_copy(update={"PPS_AUDIT_KEEP": 1000})
    service = redis_service(redis, small, inventory, clock, keys)
    job, _ = await service.create_job(req())
    snap = await service.store.load(job.id)
    assert snap is not None
    for batch in range(30):  # 3,000 entries in 30 commits
        change = Change()
        for i in range(100):
            change.record(APPROVER, "note", n=batch * 100 + i)
        assert await service.store.commit(snap, clone(snap.job), change)
    length = await redis.xlen(keys.audit)
    assert 1000 <= length < 3001, length
    newest = await redis.xrevrange(keys.audit, count=1)
    assert '"n":2999' in str(newest), newest  # the newest entries are the ones kept


async def test_more_concurrent_commands_than_connections_wait_for_one(
    redis_url: str, prefix: str
) -> None:
    from jobs.store.redis_client import MAX_CONNECTIONS, make_redis

    r = make_redis(redis_url)
    try:
        # Each BLPOP holds its connection 0.2 s; redis-py's own pool (100) refused the
        # 101st with MaxConnectionsError at once.
        n = MAX_CONNECTIONS + 44
        got = await asyncio.gather(*(r.blpop([f"{prefix}none"], timeout=0.2) for _ in range(n)))
        assert got == [None] * n
    finally:
        await r.aclose()
