"""A disable gate nobody answers (issue 9, item 12): reminders mentioning the cluster's
approvers every PPS_REMINDER_SECONDS, then, after PPS_GATE_TIMEOUT_SECONDS, the job is
cancelled with nothing changed, on a durable timer (the FakeClock moves; nothing sleeps)."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis.asyncio as aioredis

from jobs.config.inventory import Inventory
from jobs.rules.errors import StaleGate
from jobs.rules.events import EventKind
from jobs.rules.model import Decision, State, Step, StepStatus
from jobs.store.keys import Keys
from jobs.store.work_queue import WorkItem
from jobs.worker import step_runner as R
from tests.engine.engine_support import APPROVER, CLUSTERS, REQUESTER, Engine, Stubs
from tests.fakes import make_settings
from tests.fakes.clock import FakeClock

TIMEOUT = 4 * 3600.0
REMIND = 600.0


@pytest.fixture
async def gated(
    redis: aioredis.Redis, keys: Keys, prefix: str, tmp_path: Path, inventory: Inventory,
    clock: FakeClock, stubs: Stubs,
) -> Engine:
    """An engine whose approvers are a user and a user group (PPS_APPROVERS)."""
    settings = make_settings(tmp_path, prefix, PPS_APPROVERS="UAPP1,SGROUP1",
                             PPS_GATE_TIMEOUT_SECONDS=TIMEOUT, PPS_REMINDER_SECONDS=REMIND)
    return await Engine(redis, keys, settings, inventory, clock, stubs.registry()).start()


async def timer_kinds(engine: Engine, job_id: str) -> list[str]:
    return sorted(m.split("|")[1] for m in await engine.timers.all(job_id))


async def test_the_disable_gate_is_reminded_mentioning_the_approvers(gated: Engine) -> None:
    job = await gated.create("solo")
    await gated.drain()
    assert await timer_kinds(gated, job.id) == ["gate_timeout", "reminder"]
    for _ in range(3):
        await gated.tick(REMIND)
    reminders = await gated.events(job.id, EventKind.REMINDER)
    assert len(reminders) == 3
    gate = (await gated.job(job.id)).open_gate()
    assert gate is not None
    for r in reminders:
        assert r.data["approvers"] == ["UAPP1", "SGROUP1"] and r.data["gate_id"] == gate.id
        assert "approval to disable all user logins" in r.data["text"]
        assert "cancelled at" in r.data["text"] and "nothing changed" in r.data["text"]
    assert "(30 min)" in reminders[2].data["text"]


async def test_the_clusters_own_approvers_are_mentioned(
    redis: aioredis.Redis, keys: Keys, prefix: str, tmp_path: Path, clock: FakeClock,
    stubs: Stubs,
) -> None:
    from jobs.config.inventory import parse_inventory
    from tests.fakes import inventory_data
    data = inventory_data(tmp_path, CLUSTERS)
    data["clusters"]["solo"]["approvers"] = ["UOWN1", "SOWN1"]
    inv = parse_inventory(data, tmp_path, env={"PPS_U": "a", "PPS_P": "b"}, check_files=True)
    settings = make_settings(tmp_path, prefix, PPS_APPROVERS="UAPP1")
    engine = await Engine(redis, keys, settings, inv, clock, stubs.registry()).start()
    job = await engine.create("solo")
    await engine.drain()
    await engine.tick(settings.PPS_REMINDER_SECONDS)
    (r,) = await engine.events(job.id, EventKind.REMINDER)
    assert r.data["approvers"] == ["UOWN1", "SOWN1"]


async def test_an_unanswered_disable_gate_cancels_the_job_with_nothing_changed(
    gated: Engine, stubs: Stubs, redis: aioredis.Redis, keys: Keys,
) -> None:
    job = await gated.create("solo")
    await gated.drain()
    gate_id = await gated.gate(job.id)
    await gated.tick(TIMEOUT - 1)
    assert (await gated.job(job.id)).state is State.AWAITING_APPROVAL  # not yet
    outcomes = await gated.tick(1)
    assert "expired" in outcomes
    done = await gated.job(job.id)
    assert done.state is State.CANCELLED and done.settled and not done.logins_disabled
    assert stubs.effects == {}  # nothing changed on the appliance
    assert Step.DISABLE_LOGINS not in stubs.runs
    gate = done.gate(gate_id)
    assert gate is not None and gate.decision is Decision.EXPIRED and not gate.decided_by
    assert done.step_record(Step.GATE_DISABLE).status is StepStatus.FAILED
    assert "nobody answered" in done.error and "4 h 00 min" in done.error
    decided = await gated.events(job.id, EventKind.GATE_DECIDED)
    assert [e.data["decision"] for e in decided] == ["expired"]
    (fin,) = await gated.events(job.id, EventKind.FINISHED)
    assert fin.data["state"] == "cancelled" and "nobody answered" in fin.data["summary"]["error"]
    assert await redis.exists(keys.cluster("solo")) == 0  # the cluster is free again
    assert await timer_kinds(gated, job.id) == []  # reminders stopped
    # A late click is told why, and changes nothing.
    with pytest.raises(StaleGate, match="Nobody answered that request in time"):
        await gated.service.approve(job.id, gate_id, APPROVER)
    audit = [a["action"] for a in await gated.service.store.audit_entries(job.id)]
    assert "expired" in audit
    await gated.create("solo")


async def test_a_decided_gate_disarms_its_timeout(gated: Engine, stubs: Stubs) -> None:
    job = await gated.create("solo")
    await gated.drain()
    gate_id = await gated.gate(job.id)
    await gated.service.approve(job.id, gate_id, APPROVER)
    assert "gate_timeout" not in await timer_kinds(gated, job.id)
    job = await gated.run_until(job.id, lambda j: j.step is Step.GATE_ENABLE
                                and j.open_gate() is not None)
    await gated.tick(TIMEOUT)  # the enable gate never expires: logins are off
    held = await gated.job(job.id)
    assert held.state is State.AWAITING_APPROVAL and held.logins_disabled
    assert stubs.effects == {"disable_logins": 1, "install": 1}
    rejected = await gated.create("east")
    await gated.drain()
    await gated.service.reject(rejected.id, await gated.gate(rejected.id), REQUESTER)
    assert await timer_kinds(gated, rejected.id) == []


async def test_an_abort_disarms_the_timeout(gated: Engine) -> None:
    job = await gated.create("solo")
    await gated.drain()
    await gated.service.abort(job.id, REQUESTER)
    assert await timer_kinds(gated, job.id) == []


async def test_a_timeout_that_lost_the_race_to_a_decision_changes_nothing(
    gated: Engine,
) -> None:
    job = await gated.create("solo")
    await gated.drain()
    gate_id = await gated.gate(job.id)
    await gated.service.approve(job.id, gate_id, APPROVER)
    gated.clock.advance(TIMEOUT)
    item = WorkItem("0-1", job.id, "gate_timeout", gate_id)  # fired just before the decision
    assert await gated.runner.handle(item) == R.SKIPPED
    assert (await gated.job(job.id)).state is not State.CANCELLED


async def test_a_timer_firing_early_is_re_armed_for_the_gates_deadline(
    gated: Engine, redis: aioredis.Redis, keys: Keys
) -> None:
    job = await gated.create("solo")
    await gated.drain()
    gate = (await gated.job(job.id)).open_gate()
    assert gate is not None
    member = f"{job.id}|gate_timeout|{gate.id}"
    await redis.zadd(keys.timers, {member: int((gate.opened_at + 60) * 1000)})  # old setting
    await gated.tick(60)
    assert (await gated.job(job.id)).state is State.AWAITING_APPROVAL
    assert await gated.timers.due(member) == gate.opened_at + TIMEOUT
