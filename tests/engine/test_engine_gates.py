"""Gate decisions: two-person rule, stale and concurrent clicks, reject and abort semantics."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from engine_support import APPROVER, OTHER, REQUESTER, Engine, Stubs

from jobs.rules.errors import (
    AbortRefused,
    ClusterBusy,
    JobFinished,
    StaleGate,
    TwoPersonRule,
    UnknownJob,
    WrongGateKind,
)
from jobs.rules.events import EventKind
from jobs.rules.model import Decision, Job, State, Step
from jobs.service import UpgradeRequest
from jobs.store.keys import Keys
from jobs.store.wiring import redis_service


async def at_disable_gate(engine: Engine, cluster: str = "solo") -> tuple[Job, str]:
    job = await engine.create(cluster)
    await engine.drain()
    return await engine.job(job.id), await engine.gate(job.id)


async def at_enable_gate(engine: Engine) -> tuple[Job, str]:
    job, gate = await at_disable_gate(engine)
    await engine.service.approve(job.id, gate, APPROVER)
    job = await engine.run_until(
        job.id, lambda j: j.step is Step.GATE_ENABLE and j.open_gate() is not None
    )
    return job, await engine.gate(job.id)


async def test_two_person_rule_refuses_the_requester(engine: Engine) -> None:
    job, gate = await at_disable_gate(engine)
    with pytest.raises(TwoPersonRule):
        await engine.service.approve(job.id, gate, REQUESTER)
    after = await engine.job(job.id)
    assert after.state is State.AWAITING_APPROVAL and after.open_gate() is not None
    approved = await engine.service.approve(job.id, gate, APPROVER)
    assert approved.state is State.QUEUED and approved.step is Step.DISABLE_LOGINS


async def test_two_person_rule_off_lets_the_requester_approve(
    redis: aioredis.Redis, keys: Keys, engine: Engine
) -> None:
    job, gate = await at_disable_gate(engine)
    relaxed = engine.settings.model_copy(update={"PPS_TWO_PERSON_RULE": False})
    svc = redis_service(redis, relaxed, engine.service.inventory, engine.clock, keys)
    assert (await svc.approve(job.id, gate, REQUESTER)).state is State.QUEUED


async def test_requester_may_reject_their_own_job_and_it_cancels_cleanly(
    engine: Engine, stubs: Stubs, keys: Keys, redis: aioredis.Redis
) -> None:
    job, gate = await at_disable_gate(engine)
    done = await engine.service.reject(job.id, gate, REQUESTER)
    assert done.state is State.CANCELLED and done.settled
    assert await redis.exists(keys.cluster("solo")) == 0
    assert stubs.effects == {}
    await engine.drain()
    assert stubs.runs.count(Step.DISABLE_LOGINS) == 0
    fin = await engine.events(job.id, EventKind.FINISHED)
    assert [e.data["state"] for e in fin] == ["cancelled"]
    await engine.create("solo")  # the cluster is free again


async def test_concurrent_approvals_make_exactly_one_transition(engine: Engine) -> None:
    job, gate = await at_disable_gate(engine)
    results = await asyncio.gather(
        *(engine.service.approve(job.id, gate, u) for u in (APPROVER, OTHER, "UTHIRD")),
        return_exceptions=True,
    )
    ok = [r for r in results if isinstance(r, Job)]
    stale = [r for r in results if isinstance(r, StaleGate)]
    assert len(ok) == 1 and len(stale) == 2
    winner = ok[0].gate(gate)
    assert winner is not None and winner.decided_by is not None
    assert all(s.decided_by == winner.decided_by and s.decision == "approved" for s in stale)
    decided = await engine.events(job.id, EventKind.GATE_DECIDED)
    assert len(decided) == 1
    queued = await engine.queue.read(None, count=10)
    assert len(queued) == 1  # one work item, not three


async def test_stale_and_unknown_gates_change_nothing(engine: Engine) -> None:
    job, gate = await at_disable_gate(engine)
    with pytest.raises(StaleGate) as exc:
        await engine.service.approve(job.id, "G09-000000", APPROVER)
    assert exc.value.decided_by is None
    with pytest.raises(UnknownJob):
        await engine.service.approve("J-0999", gate, APPROVER)
    with pytest.raises(WrongGateKind):
        await engine.service.confirm(job.id, gate, APPROVER)
    await engine.service.approve(job.id, gate, APPROVER)
    with pytest.raises(StaleGate) as exc:
        await engine.service.reject(job.id, gate, OTHER)  # old message clicked later
    assert exc.value.decided_by == APPROVER
    assert f"Already decided by <@{APPROVER}> (approved)" in exc.value.message
    after = await engine.job(job.id)
    assert after.state is State.QUEUED and after.step is Step.DISABLE_LOGINS


async def test_decisions_on_a_finished_job(engine: Engine) -> None:
    job, gate = await at_disable_gate(engine)
    await engine.service.abort(job.id, REQUESTER)
    with pytest.raises(StaleGate) as stale:
        await engine.service.approve(job.id, gate, APPROVER)
    assert stale.value.decision == Decision.ABORTED.value
    with pytest.raises(JobFinished):
        await engine.service.approve(job.id, "G05-abcdef", APPROVER)
    with pytest.raises(JobFinished):
        await engine.service.abort(job.id, REQUESTER)


async def test_reject_at_enable_gate_holds_with_logins_disabled_and_offers_a_new_gate(
    engine: Engine, stubs: Stubs, keys: Keys, redis: aioredis.Redis
) -> None:
    job, gate = await at_enable_gate(engine)
    held = await engine.service.reject(job.id, gate, OTHER)
    assert held.state is State.HELD and held.logins_disabled
    assert OTHER in held.held_reason
    fresh = held.open_gate()
    assert fresh is not None and fresh.id != gate and fresh.step is Step.GATE_ENABLE
    assert await redis.hget(keys.cluster("solo"), "job_id") == job.id  # lock kept
    opened = await engine.events(job.id, EventKind.GATE_OPENED)
    assert opened[-1].data["gate_id"] == fresh.id
    # The same evidence is offered again, with the reason it is offered again.
    assert opened[-1].data["evidence"]["summary"] == opened[-2].data["evidence"]["summary"]
    assert OTHER in opened[-1].data["evidence"]["reason"]
    alerts = await engine.events(job.id, EventKind.LOGINS_DISABLED_ALERT)
    assert "still disabled on solo" in alerts[-1].data["text"]
    with pytest.raises(ClusterBusy):
        await engine.create("solo")
    # Reminders continue while held.
    await engine.tick(engine.settings.PPS_REMINDER_SECONDS)
    assert len(await engine.events(job.id, EventKind.REMINDER)) == 1
    # Someone approves later: logins are enabled once, the job succeeds.
    await engine.service.approve(job.id, fresh.id, APPROVER)
    done = await engine.run_until(job.id, lambda j: j.terminal)
    assert done.state is State.SUCCEEDED and done.settled and done.held_reason == ""
    assert stubs.effects == {"disable_logins": 1, "install": 1, "enable_logins": 1}


async def test_abort_before_disable_cancels_cleanly(engine: Engine, stubs: Stubs) -> None:
    for step_to_reach in (Step.PREFLIGHT, Step.GATE_DISABLE):
        job = await engine.create("mesh")
        if step_to_reach is Step.GATE_DISABLE:
            await engine.drain()
        before = await engine.job(job.id)
        assert before.step is step_to_reach
        done = await engine.service.abort(job.id, OTHER)
        assert done.state is State.CANCELLED and done.settled
        assert done.outputs.aborted_by == OTHER
        assert done.open_gate() is None
        await engine.drain()  # the queued item finds nothing to do
        assert (await engine.job(job.id)).state is State.CANCELLED
    assert stubs.effects == {}


async def test_abort_between_disable_and_install_goes_to_the_enable_gate(
    engine: Engine, stubs: Stubs
) -> None:
    job, gate = await at_disable_gate(engine)
    await engine.service.approve(job.id, gate, APPROVER)
    # Run DISABLE_LOGINS only: the install is queued, not started.
    items = await engine.queue.read(None)
    await engine.runner.handle(items[0])
    await engine.queue.ack(items[0])
    mid = await engine.job(job.id)
    assert (mid.step, mid.state, mid.logins_disabled) == (Step.INSTALL, State.QUEUED, True)
    aborted = await engine.service.abort(job.id, OTHER)
    assert aborted.step is Step.GATE_ENABLE and aborted.state is State.AWAITING_APPROVAL
    assert aborted.outputs.aborted_by == OTHER
    await engine.drain()  # the queued install item must not install
    assert "install" not in stubs.effects
    with pytest.raises(AbortRefused):
        await engine.service.abort(job.id, OTHER)
    await engine.service.approve(job.id, await engine.gate(job.id), APPROVER)
    done = await engine.run_until(job.id, lambda j: j.settled)
    assert done.state is State.CANCELLED and not done.logins_disabled
    assert stubs.effects == {"disable_logins": 1, "enable_logins": 1}


async def test_abort_at_the_disable_step_goes_to_the_enable_gate(engine: Engine) -> None:
    job, gate = await at_disable_gate(engine)
    await engine.service.approve(job.id, gate, APPROVER)
    aborted = await engine.service.abort(job.id, OTHER)
    assert aborted.step is Step.GATE_ENABLE and aborted.open_gate() is not None
    assert not aborted.logins_disabled  # the disable step never started


async def test_abort_is_refused_once_the_install_started(engine: Engine, stubs: Stubs) -> None:
    job, gate = await at_disable_gate(engine)
    await engine.service.approve(job.id, gate, APPROVER)
    await engine.drain()
    watching = await engine.job(job.id)
    assert watching.step is Step.WATCH_REBOOT
    with pytest.raises(AbortRefused) as exc:
        await engine.service.abort(job.id, OTHER)
    assert "firmware install has started on solo-1" in exc.value.message
    assert "approve the enable gate when it is offered" in exc.value.message
    assert (await engine.job(job.id)).state is State.WAITING
    job, gate = await at_enable_gate_of(engine, job.id)
    with pytest.raises(AbortRefused):
        await engine.service.abort(job.id, OTHER)


async def at_enable_gate_of(engine: Engine, job_id: str) -> tuple[Job, str]:
    job = await engine.run_until(job_id, lambda j: j.open_gate() is not None)
    return job, await engine.gate(job_id)


async def test_abort_after_enable_cancels(engine: Engine, stubs: Stubs) -> None:
    job, gate = await at_enable_gate(engine)
    await engine.service.approve(job.id, gate, APPROVER)
    items = await engine.queue.read(None)  # run ENABLE_LOGINS only
    await engine.runner.handle(items[0])
    await engine.queue.ack(items[0])
    assert (await engine.job(job.id)).step is Step.VERIFY
    done = await engine.service.abort(job.id, OTHER)
    assert done.state is State.CANCELLED and done.settled


async def test_confirm_gate_two_person_rule_and_kind(engine: Engine, stubs: Stubs) -> None:
    stubs.operator_at.add(Step.DISABLE_LOGINS)
    job, gate = await at_disable_gate(engine)
    await engine.service.approve(job.id, gate, APPROVER)
    await engine.drain()
    asked = await engine.job(job.id)
    confirm = asked.open_gate()
    assert confirm is not None and confirm.kind.value == "confirm"
    assert asked.manual == {"disable_logins": "manual"}
    manual = await engine.events(job.id, EventKind.MANUAL)
    assert manual[-1].data["gate_id"] == confirm.id
    assert manual[-1].data["instructions"] == "do disable_logins by hand"
    with pytest.raises(WrongGateKind):
        await engine.service.approve(job.id, confirm.id, APPROVER)
    with pytest.raises(TwoPersonRule):
        await engine.service.confirm(job.id, confirm.id, REQUESTER)
    confirmed = await engine.service.confirm(job.id, confirm.id, APPROVER)
    assert confirmed.state is State.QUEUED and confirmed.step is Step.DISABLE_LOGINS
    await engine.drain()
    assert (await engine.job(job.id)).step is Step.WATCH_REBOOT


async def test_every_decision_is_audited(engine: Engine) -> None:
    job, gate = await at_disable_gate(engine)
    await engine.service.approve(job.id, gate, APPROVER)
    await engine.drain()
    audit = await engine.service.store.audit_entries(job.id)
    actions = [(a["actor"], a["action"]) for a in audit]
    assert (REQUESTER, "create") in actions and (APPROVER, "approved") in actions
    entry = next(a for a in audit if a["action"] == "approved")
    assert entry["detail"]["gate"] == gate and float(entry["at"]) > 0


async def test_service_rejects_a_second_upgrade_only_for_the_same_cluster(
    engine: Engine,
) -> None:
    await engine.create("solo")
    with pytest.raises(ClusterBusy):
        await engine.service.create_job(UpgradeRequest("solo", OTHER, "C1"))
