"""Retention (issue 9, item 7): a settled job's records (hash, card hash, fence counter)
expire after PPS_RETENTION_DAYS; an active job, or one whose logins may be off, never does;
history entries of expired jobs are dropped as new jobs are made; the audit stream keeps
its floor."""

from __future__ import annotations

import redis.asyncio as aioredis

from jobs.rules.model import State, Step
from jobs.store.keys import Keys
from jobs.store.lease import Lease
from tests.engine.engine_support import APPROVER, Engine, Stubs

DAY_MS = 86_400_000


async def ttl_days(redis: aioredis.Redis, key: str) -> float:
    """The key's time to live in days; -1 without one, -2 when missing."""
    ms = int(await redis.pttl(key))
    return ms / DAY_MS if ms > 0 else float(ms)


async def test_a_settled_jobs_records_expire_after_the_retention(
    engine: Engine, redis: aioredis.Redis, keys: Keys
) -> None:
    job = await engine.create("solo", dry_run=True)
    assert await ttl_days(redis, keys.job(job.id)) == -1  # queued: kept
    # The notifier's card hash exists before the job ends.
    assert await engine.service.store.set_fields_if_same(
        job.id, job.created_at, {"msg:card": "1.1"}, key=keys.card(job.id))
    await engine.drain()
    done = await engine.job(job.id)
    assert done.state is State.SUCCEEDED and done.settled
    for key in (keys.job(job.id), keys.card(job.id), keys.fence(job.id)):
        assert 399.9 < await ttl_days(redis, key) <= 400.0, key
    assert len(await engine.service.store.audit_entries(job.id)) >= 2  # the audit keeps it


async def test_a_card_hash_first_written_after_the_end_expires_with_its_job(
    engine: Engine, redis: aioredis.Redis, keys: Keys
) -> None:
    job = await engine.create("solo", dry_run=True)
    await engine.drain()
    assert await redis.exists(keys.card(job.id)) == 0  # the notifier has not run yet
    assert await engine.service.store.set_fields_if_same(
        job.id, job.created_at, {"seq:1": "1"}, key=keys.card(job.id))
    assert 399.9 < await ttl_days(redis, keys.card(job.id)) <= 400.0


async def test_a_job_with_logins_maybe_off_never_expires_until_they_are_back(
    engine: Engine, stubs: Stubs, redis: aioredis.Redis, keys: Keys
) -> None:
    stubs.fail_at[Step.INSTALL] = "upload refused"
    job = await engine.create("solo")
    await engine.drain()
    await engine.service.approve(job.id, await engine.gate(job.id), APPROVER)
    await engine.drain()
    failed = await engine.job(job.id)
    assert failed.state is State.FAILED and failed.logins_disabled and failed.terminal
    assert await ttl_days(redis, keys.job(job.id)) == -1
    assert await ttl_days(redis, keys.fence(job.id)) == -1
    stubs.fail_at.clear()
    await engine.service.approve(job.id, await engine.gate(job.id), APPROVER)
    await engine.drain()
    assert (await engine.job(job.id)).settled
    assert 399.9 < await ttl_days(redis, keys.job(job.id)) <= 400.0


async def test_the_retention_setting_is_used(
    engine: Engine, redis: aioredis.Redis, keys: Keys
) -> None:
    engine.runner.store.retention = 30 * 86400.0  # PPS_RETENTION_DAYS=30 on the worker
    job = await engine.create("solo", dry_run=True)
    await engine.drain()
    assert 29.9 < await ttl_days(redis, keys.job(job.id)) <= 30.0


async def test_expired_jobs_leave_the_history_but_old_active_ones_stay(
    engine: Engine, redis: aioredis.Redis, keys: Keys
) -> None:
    gone = await engine.create("solo", dry_run=True)
    waiting = await engine.create("east")  # stays at its disable gate (logins on)
    await engine.drain()
    for key in (keys.job(gone.id), keys.card(gone.id), keys.fence(gone.id)):
        await redis.delete(key)  # what the expiry does after PPS_RETENTION_DAYS
    engine.clock.advance(401 * 86400.0)
    new = await engine.create("solo", dry_run=True)
    assert await redis.zrange(keys.history, 0, -1) == [waiting.id, new.id]
    assert await redis.zrange(keys.cluster_history("solo"), 0, -1) == [new.id]
    assert [j.id for j in await engine.service.history()] == [new.id, waiting.id]


async def test_a_lease_on_an_expired_job_leaves_no_fence_counter_behind(
    redis: aioredis.Redis, keys: Keys
) -> None:
    lease = Lease(redis, keys, "J-GONE", 5.0)
    assert await lease.acquire()
    assert 0 < int(await redis.pttl(keys.fence("J-GONE"))) <= 5000
    await lease.release()
    assert 0 < int(await redis.pttl(keys.fence("J-GONE"))) <= 5000
