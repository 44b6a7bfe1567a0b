"""A fenced commit re-sent after a lost reply (what redis-py's retry does after a socket
timeout) is recognised as already applied: it reports success and writes nothing twice.
A different commit computed from the same stale snapshot is still refused. The same for a
re-sent lease acquire: it gets the fence it was given."""

from __future__ import annotations

import copy
import secrets
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from engine_support import REQUESTER, make_inventory, make_settings

from jobs.rules.change import Change
from jobs.rules.events import EventKind
from jobs.rules.model import Job, State
from jobs.rules.transitions import clone
from jobs.service import UpgradeRequest
from jobs.store.keys import Keys
from jobs.store.lease import Lease
from jobs.store.wiring import redis_service
from tests.fakes.clock import FakeClock


async def test_resilience_resent_commit_is_applied_once(
    redis: aioredis.Redis,
    keys: Keys,
    prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = make_settings(prefix, tmp_path)
    svc = redis_service(redis, settings, make_inventory(tmp_path), FakeClock(), keys)
    job, _ = await svc.create_job(UpgradeRequest("solo", REQUESTER, "C1"))
    snap = await svc.store.load(job.id)
    assert snap is not None
    first, again, other = copy.deepcopy(snap), copy.deepcopy(snap), copy.deepcopy(snap)

    def running() -> tuple[Job, Change]:
        new = clone(snap.job)
        new.state = State.RUNNING
        change = Change()
        change.event(EventKind.STATE, to="running")
        return new, change

    # The same call's payload twice = one commit whose reply was lost, then its re-send.
    monkeypatch.setattr(secrets, "token_hex", lambda n: "c0ffee00c0ffee00")
    events_before = len(await svc.store.events(job.id))
    new, change = running()
    assert await svc.store.commit(first, new, change)
    new, change = running()
    assert await svc.store.commit(again, new, change), "re-sent commit reported refused"
    assert len(await svc.store.events(job.id)) == events_before + 1, "event written twice"

    # Another commit from the same (now stale) snapshot is refused as before.
    monkeypatch.setattr(secrets, "token_hex", lambda n: "0123456789abcdef")
    new, change = running()
    assert not await svc.store.commit(other, new, change)
    assert (await svc.get(job.id)).state is State.RUNNING


async def test_resilience_resent_lease_acquire_gets_its_own_fence(
    redis: aioredis.Redis, keys: Keys, prefix: str, tmp_path: Path
) -> None:
    settings = make_settings(prefix, tmp_path)
    svc = redis_service(redis, settings, make_inventory(tmp_path), FakeClock(), keys)
    job, _ = await svc.create_job(UpgradeRequest("solo", REQUESTER, "C1"))
    lease = Lease(redis, keys, job.id, 30)
    assert await lease.acquire()
    first = lease.fence
    # The same call again (same owner token): what redis-py sends when the reply was lost.
    assert await lease.acquire(), "a re-sent acquire was refused: the job would stall a lease"
    assert lease.fence == first and (await svc.get(job.id)).fence == first
    other = Lease(redis, keys, job.id, 30)
    assert not await other.acquire()
    assert await lease.release()
