"""The fleet poll against the PPS simulator (real HTTP) and real Redis: what it stores, the
clusters it leaves alone, one poller per cluster at a time, and nodes that do not answer."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from jobs.fleet.model import UNREACHABLE
from jobs.fleet.poller import cluster_seconds
from jobs.service import UpgradeRequest
from jobs.store.wiring import redis_service
from jobs.worker.process import Worker

StartFleet = Any
OLD, ROLLBACK = "9.1R17 (build 27583)", "9.1R16 (build 26213)"
NEW = "9.1R18 (build 29865)"
EAST = {"mode": "active-passive", "nodes": ["east-a", "east-b"], "sessions": 412}
LAB = {"mode": "standalone", "nodes": [{"name": "lab-1", "build": NEW}], "sessions": 3,
       "login_permission": False}


async def test_fleet_poll_stores_builds_status_logins_and_sessions(fleet: StartFleet) -> None:
    env = await fleet({"east": EAST, "lab": LAB})
    poller = env.poller()
    done = await poller.poll_due()
    assert sorted(done.polled) == ["east", "lab"]
    east, lab = await env.store.load("east"), await env.store.load("lab")
    assert east is not None and lab is not None
    assert [(n.name, n.build, n.rollback_build, n.status, n.error) for n in east.nodes] == [
        ("east-a", OLD, ROLLBACK, "Leader", None),
        ("east-b", OLD, ROLLBACK, "Enabled", None),
    ]
    assert (east.login_permission, east.sessions, east.error) == (True, 412, None)
    assert east.read_at == env.clock.now()
    assert [(n.build, n.status) for n in lab.nodes] == [(NEW, "standalone")]
    assert (lab.login_permission, lab.sessions) == (False, 3)
    assert env.writes() == []  # read-only: no node received a single write
    # Fresh readings are not read again until the interval has passed.
    assert (await poller.poll_due()).polled == []
    env.clock.advance(env.settings.PPS_FLEET_POLL_SECONDS)
    await env.sim.configure("east", {"sessions": 7})
    assert sorted((await poller.poll_due()).polled) == ["east", "lab"]
    again = await env.store.load("east")
    assert again is not None and again.sessions == 7 and again.read_at == env.clock.now()
    assert await env.redis.exists(env.keys.fleet_lock("east")) == 0  # released


async def test_fleet_poll_skips_a_cluster_whose_job_has_started(fleet: StartFleet) -> None:
    env = await fleet({"east": EAST, "lab": LAB})
    service = redis_service(env.redis, env.settings, env.inventory, env.clock, env.keys)
    job, _ = await service.create_job(UpgradeRequest("east", "U_REQ", "C1"))
    await service.create_job(UpgradeRequest("lab", "U_REQ", "C1", at=env.clock.now() + 3600))
    done = await env.poller().poll_due()
    assert done.busy == ["east"]  # queued: its job reads the cluster itself
    assert done.polled == ["lab"]  # only scheduled: nothing reads it yet
    assert await env.store.load("east") is None
    assert env.gauges["lab"]["calls"] > 0 and "east" not in env.gauges
    # Once the job is over the cluster is polled again.
    await service.abort(job.id, "U_REQ")
    assert (await env.poller().poll_due()).polled == ["east"]


async def test_two_workers_never_poll_one_cluster_at_once(fleet: StartFleet) -> None:
    env = await fleet({"east": {**EAST, "faults": {"slow_seconds": 0.15}}})
    workers = [env.poller("w1"), env.poller("w2"), env.poller("w3")]
    for _ in range(4):
        env.clock.advance(env.settings.PPS_FLEET_POLL_SECONDS)
        rounds = await asyncio.gather(*(w.poll_due() for w in workers))
        polled = [r for r in rounds if "east" in r.polled]
        assert len(polled) == 1, rounds
        assert all("east" in r.locked or "east" in r.fresh for r in rounds if r not in polled)
    gauge = env.gauges["east"]
    # Each worker has its own clients; reads of two of them never overlapped.
    assert gauge["max_owners"] == 1 and gauge["polls"] == 4, gauge


async def test_a_lock_left_by_a_dead_worker_expires(fleet: StartFleet) -> None:
    env = await fleet({"lab": LAB})
    assert await env.store.lock("lab", "dead-worker", 0.3)
    assert (await env.poller().poll_due()).locked == ["lab"]
    await asyncio.sleep(0.35)  # the lock's own expiry, in Redis
    assert (await env.poller().poll_due()).polled == ["lab"]
    assert not await env.store.unlock("lab", "dead-worker")  # never frees another's lock


async def test_an_unreachable_node_is_recorded_and_the_rest_read(fleet: StartFleet) -> None:
    env = await fleet({"east": EAST})
    await env.sim.power("east", "east-b", False)
    started = time.monotonic()
    assert (await env.poller().poll_due()).polled == ["east"]
    assert time.monotonic() - started < cluster_seconds(env.settings.PPS_FLEET_POLL_SECONDS)
    east = await env.store.load("east")
    assert east is not None
    a, b = east.nodes
    assert (a.build, a.status, a.error) == (OLD, "Leader", None)
    assert (b.build, b.status, b.error) == (None, None, UNREACHABLE)
    # Read through the VIP; east-b's users lost their sessions when it went down.
    left = len(env.sim.cluster("east").sessions)
    assert (east.login_permission, east.sessions) == (True, left) and 0 < left < 412


@pytest.mark.timeout(30)
async def test_a_slow_node_costs_at_most_the_time_bound(fleet: StartFleet) -> None:
    # A client timeout of 20 s (PPS_POLL_SECONDS 10) and a node answering after 5 s: the
    # poll's own bound (2 s at a 4 s interval) ends the wait and records why.
    env = await fleet({"east": {**EAST, "faults": {"slow_seconds": 5.0,
                                                   "slow_nodes": ["east-b"]}}},
                      PPS_POLL_SECONDS=10.0, PPS_FLEET_POLL_SECONDS=4.0)
    bound = cluster_seconds(4.0)
    started = time.monotonic()
    await env.poller().poll_due()
    assert time.monotonic() - started < bound + 1.0
    east = await env.store.load("east")
    assert east is not None
    assert east.nodes[0].error is None and east.nodes[0].build == OLD
    assert east.nodes[1].error == f"no answer within {bound:g} s"


async def test_the_worker_polls_the_fleet_on_its_own_tick(fleet: StartFleet) -> None:
    env = await fleet({"east": EAST, "lab": LAB}, PPS_FLEET_POLL_SECONDS=0.5,
                      PPS_LEASE_SECONDS=0.6)
    worker = Worker(env.redis, env.settings, env.inventory, appliance_factory=env.appliance,
                    name="fleet-test-worker", keys=env.keys)
    task = asyncio.create_task(worker.run())
    try:
        deadline = time.monotonic() + 10
        while len(await env.store.load_many(["east", "lab"])) < 2:
            assert time.monotonic() < deadline, "no fleet reading within 10 s"
            await asyncio.sleep(0.05)
    finally:
        worker.stop()
        await asyncio.wait_for(task, 10)
    east = await env.store.load("east")
    assert east is not None and [n.status for n in east.nodes] == ["Leader", "Enabled"]
    assert env.writes() == []
