"""The worker's scheduler ticks and heartbeat log what matters and nothing else: a tick in
flight when the worker stops ends without an APScheduler traceback, a heartbeat that falls
between two items (no lease held at that instant) is not a lost lease, and a recurring fault
is reported when it starts, changes and ends (`ChangeLog`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest
from redis.exceptions import OutOfMemoryError, ReadOnlyError

from jobs.appliance.protocol import Appliance
from jobs.config.clock import SystemClock
from jobs.config.inventory import Cluster
from jobs.config.log import ChangeLog
from jobs.store.lease import Lease
from jobs.store.wiring import redis_runner
from tests.resilience.resilience_support import Rig

StartRig = Callable[..., Awaitable[Rig]]


async def test_resilience_stop_with_a_tick_in_flight_is_quiet(
    rig: StartRig, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.ERROR, logger="apscheduler")
    r = await rig(workers=1)
    w = r.workers[0]
    entered = asyncio.Event()

    async def slow_release(now: float, limit: int = 100) -> int:
        entered.set()
        await asyncio.sleep(30)  # still running when the scheduler shuts down
        return 0

    monkeypatch.setattr(w.timers, "release_due", slow_release)
    await asyncio.wait_for(entered.wait(), 5)
    w.stop()
    await asyncio.wait_for(r.tasks[0], 5)
    errors = [rec.getMessage() for rec in caplog.records if rec.name.startswith("apscheduler")]
    assert errors == []
    assert r.log.count("scheduler tick failing") == 0


async def test_resilience_heartbeat_between_items_is_not_a_lost_lease(rig: StartRig) -> None:
    r = await rig(workers=0)  # a runner of our own, driven by hand
    runner = redis_runner(r.redis, r.keys, r.settings, r.inventory, SystemClock(), _no_appliance)
    job = await r.create("solo")
    item = "1-0"  # the work item the lease is held for
    assert runner.held == {}
    assert await runner.heartbeat(item), "no lease at this instant: nothing was lost"

    # The item finishes (lease released) while a heartbeat's renew is on its way.
    lease = Lease(r.redis, r.keys, job.id, 5.0)
    assert await lease.acquire()
    runner.held[item] = lease
    renew = lease.renew

    async def released_meanwhile() -> bool:
        del runner.held[item]
        await lease.release()
        return await renew()

    lease.renew = released_meanwhile  # type: ignore[method-assign]
    assert await runner.heartbeat(item)

    # Really lost: another worker holds the lease now.
    mine = Lease(r.redis, r.keys, job.id, 0.05)
    assert await mine.acquire()
    runner.held[item] = mine
    await asyncio.sleep(0.1)  # expired
    other = Lease(r.redis, r.keys, job.id, 5.0)
    assert await other.acquire()
    assert not await runner.heartbeat(item)
    del runner.held[item]
    await other.release()


def _no_appliance(cluster: Cluster) -> Appliance:
    raise AssertionError("no step runs in this test")


def test_resilience_change_log_reports_starts_changes_and_ends() -> None:
    log = ChangeLog()
    oom = OutOfMemoryError("command not allowed when used memory > 'maxmemory'.")
    in_pipeline = OutOfMemoryError(  # as redis-py annotates an error inside a pipeline
        "Command # 1 (XACK q workers 1-0) of pipeline caused error: "
        "(\"command not allowed when used memory > 'maxmemory'.\",)"
    )
    assert log.failing("loop", oom)  # starts: log it
    assert not log.failing("loop", in_pipeline)  # the same fault through a pipeline
    assert not log.failing("loop", oom)
    assert log.failing("loop", ReadOnlyError("You can't write against a read only replica."))
    assert log.failing("tick", oom)  # each source on its own
    assert log.recovered("loop") and not log.recovered("loop")
