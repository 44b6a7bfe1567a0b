"""The maintenance window at the gates (issue 9, item 11): approving the disable gate outside
the cluster's window is refused and changes nothing (the gate stays open for the next window
or an abort); enabling logins is never held back by the window."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from jobs.config.inventory import parse_inventory
from jobs.config.window import parse_window
from jobs.rules.errors import EngineError
from jobs.rules.model import State, Step
from jobs.store.keys import Keys
from tests.engine.engine_support import APPROVER, CLUSTERS, REQUESTER, Engine, Stubs
from tests.fakes import inventory_data, make_settings
from tests.fakes.clock import FakeClock

WINDOW = "Sat 01:00-05:00 UTC"
SAT_0100 = datetime(2030, 1, 5, 1, 0, tzinfo=UTC).timestamp()  # a Saturday


@pytest.fixture
async def windowed(
    redis: aioredis.Redis, keys: Keys, prefix: str, tmp_path: Path, stubs: Stubs,
) -> Engine:
    """`solo` has the window; the clock starts at its opening."""
    data = inventory_data(tmp_path, CLUSTERS)
    data["clusters"]["solo"]["window"] = WINDOW
    inv = parse_inventory(data, tmp_path, env={"PPS_U": "a", "PPS_P": "b"}, check_files=True)
    clock = FakeClock(start=SAT_0100)
    stubs.clock = clock
    settings = make_settings(tmp_path, prefix, PPS_GATE_TIMEOUT_SECONDS=30 * 86400.0)
    return await Engine(redis, keys, settings, inv, clock, stubs.registry()).start()


async def test_the_disable_gate_is_refused_outside_the_window_and_stays_open(
    windowed: Engine, stubs: Stubs,
) -> None:
    job = await windowed.create("solo")
    await windowed.drain()
    gate = await windowed.gate(job.id)
    windowed.clock.advance(4 * 3600 + 60)  # 05:01: the window has closed
    with pytest.raises(EngineError, match="outside the maintenance window") as refused:
        await windowed.service.approve(job.id, gate, APPROVER)
    msg = refused.value.message
    assert WINDOW in msg and "Sat 2030-01-12 01:00 UTC" in msg and "abort" in msg
    held = await windowed.job(job.id)
    assert held.state is State.AWAITING_APPROVAL and held.step is Step.GATE_DISABLE
    still = held.open_gate()
    assert still is not None and still.id == gate
    assert not held.logins_disabled and stubs.effects == {}
    # The next window: the same request is approved and the job goes on.
    windowed.clock.advance(7 * 86400 - 4 * 3600 - 60)  # Sat 2030-01-12 01:00
    approved = await windowed.service.approve(job.id, gate, APPROVER)
    assert approved.step is Step.DISABLE_LOGINS
    done = await windowed.run_until(job.id, lambda j: j.step is Step.GATE_ENABLE
                                    and j.open_gate() is not None)
    assert done.logins_disabled


async def test_enabling_logins_is_never_held_back_by_the_window(
    windowed: Engine, stubs: Stubs,
) -> None:
    job = await windowed.create("solo")
    await windowed.drain()
    await windowed.service.approve(job.id, await windowed.gate(job.id), APPROVER)
    await windowed.run_until(job.id, lambda j: j.step is Step.GATE_ENABLE
                             and j.open_gate() is not None)
    windowed.clock.advance(12 * 3600)  # long past the window
    enable = await windowed.service.approve(job.id, await windowed.gate(job.id), APPROVER)
    assert enable.step is Step.ENABLE_LOGINS
    done = await windowed.run_until(job.id, lambda j: j.terminal)
    assert done.state is State.SUCCEEDED and stubs.effects["enable_logins"] == 1


async def test_outside_the_window_the_requester_still_hears_the_two_person_rule_first(
    windowed: Engine,
) -> None:
    from jobs.rules.errors import TwoPersonRule

    job = await windowed.create("solo")
    await windowed.drain()
    windowed.clock.advance(6 * 3600)
    with pytest.raises(TwoPersonRule):
        await windowed.service.approve(job.id, await windowed.gate(job.id), REQUESTER)
    # Rejecting (or aborting) is always possible: it changes nothing on the appliance.
    done = await windowed.service.reject(job.id, await windowed.gate(job.id), REQUESTER)
    assert done.state is State.CANCELLED


def test_next_opening_of_a_weekly_and_an_overnight_window() -> None:
    w = parse_window(WINDOW)
    assert w.next_opening(SAT_0100 - 1) == SAT_0100
    assert w.next_opening(SAT_0100) == SAT_0100 + 7 * 86400
    night = parse_window("Mon-Fri 22:00-02:00 UTC")
    fri_2300 = datetime(2030, 1, 4, 23, 0, tzinfo=UTC).timestamp()
    assert night.contains(fri_2300)
    assert night.next_opening(fri_2300) == datetime(2030, 1, 7, 22, 0, tzinfo=UTC).timestamp()
    assert night.local(fri_2300) == "Fri 2030-01-04 23:00 UTC"
