"""Escalation (issue 11, item 3), on the real rules, runner and Redis with a FakeClock:
after PPS_ESCALATE_AFTER_SECONDS with logins off while a human is awaited, on-call is
called once; logins back on resolve it; the webhook goes through `page` timers with
backoff, never through the job's lease."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from jobs.config.inventory import Inventory
from jobs.rules.events import EventKind
from jobs.rules.model import Job, State, Step
from jobs.store.keys import Keys
from jobs.store.page_marks import PageMarks
from jobs.worker import step_runner as R
from jobs.worker.pager import Pager
from jobs.worker.webhook import Delivery
from tests.engine.engine_support import APPROVER, Engine, Stubs
from tests.fakes import make_settings
from tests.fakes.clock import FakeClock

AFTER = 1800.0
HOOK = "http://pager.invalid/v2/enqueue"


@pytest.fixture
async def esc(
    redis: aioredis.Redis, keys: Keys, prefix: str, tmp_path: Path, inventory: Inventory,
    clock: FakeClock, stubs: Stubs,
) -> Engine:
    settings = make_settings(tmp_path, prefix, PPS_ESCALATE_AFTER_SECONDS=AFTER,
                             PPS_ONCALL="UONCALL,SONCALL", PPS_ESCALATION_CHANNEL="CESC",
                             PPS_ESCALATION_WEBHOOK=HOOK, PPS_REMINDER_SECONDS=600,
                             PPS_APPROVERS="UAPP1,SGROUP1")
    return await Engine(redis, keys, settings, inventory, clock, stubs.registry()).start()


class FakeHook:
    """The webhook's answers, in order (then 202s); what was sent."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.sent: list[dict[str, Any]] = []

    async def __call__(self, url: str, body: dict[str, Any]) -> Delivery:
        assert url == HOOK
        self.sent.append(body)
        status = self.statuses.pop(0) if self.statuses else 202
        return Delivery(200 <= status < 300, status >= 500, f"HTTP {status}")


def with_pager(engine: Engine, hook: FakeHook, redis: aioredis.Redis, keys: Keys) -> Pager:
    pager = Pager(engine.runner.store, engine.timers, PageMarks(redis, keys), engine.settings,
                  engine.clock, hook, first_retry=15.0, max_attempts=4)
    engine.runner.pager = pager
    return pager


async def at_enable_gate(engine: Engine) -> Job:
    job = await engine.create("solo")
    await engine.drain()
    await engine.service.approve(job.id, await engine.gate(job.id), APPROVER)
    return await engine.run_until(job.id, lambda j: j.step is Step.GATE_ENABLE
                                  and j.open_gate() is not None)


async def tick_paging(engine: Engine, pager: Pager, seconds: float) -> list[str]:
    out = await engine.tick(seconds)
    await pager.drain()
    return out


async def test_logins_off_too_long_escalates_once_then_resolves(
    esc: Engine, redis: aioredis.Redis, keys: Keys
) -> None:
    hook = FakeHook()
    pager = with_pager(esc, hook, redis, keys)
    job = await at_enable_gate(esc)
    assert job.logins_disabled_at is not None
    waited = esc.clock.now() - job.logins_disabled_at
    await tick_paging(esc, pager, AFTER - waited - 1)
    assert await esc.events(job.id, EventKind.ESCALATED) == []  # not yet
    outcomes = await tick_paging(esc, pager, 1)
    assert R.ESCALATED in outcomes
    (ev,) = await esc.events(job.id, EventKind.ESCALATED)
    assert ev.data["channel"] == "CESC" and ev.data["oncall"] == ["UONCALL", "SONCALL"]
    assert "have been disabled since" in ev.data["text"] and "30 min" in ev.data["text"]
    await tick_paging(esc, pager, 0)  # the page timer was due at once
    assert [b["event_action"] for b in hook.sent] == ["trigger"]
    trigger = hook.sent[0]
    assert trigger["dedup_key"] == job.id and trigger["payload"]["severity"] == "critical"
    assert trigger["payload"]["source"] == "solo" and "solo" in trigger["payload"]["summary"]
    assert "routing_key" not in trigger  # none configured
    for _ in range(4):  # reminders go on; the escalation does not repeat
        await tick_paging(esc, pager, 600)
    assert len(await esc.events(job.id, EventKind.ESCALATED)) == 1
    assert len(hook.sent) == 1
    reminders = await esc.events(job.id, EventKind.REMINDER)
    off = [r for r in reminders if "disabled since" in r.data["text"]]
    assert len(off) >= 4  # while logins are off they mention the approvers too
    assert all(r.data["approvers"] == ["UAPP1", "SGROUP1"] for r in off)
    await esc.service.approve(job.id, await esc.gate(job.id), APPROVER)
    done = await esc.run_until(job.id, lambda j: j.terminal)
    assert done.state is State.SUCCEEDED and done.outputs.escalation_resolved_at is not None
    (res,) = await esc.events(job.id, EventKind.ESCALATION_RESOLVED)
    assert res.data["channel"] == "CESC" and "enabled again" in res.data["text"]
    await tick_paging(esc, pager, 0)
    assert [b["event_action"] for b in hook.sent] == ["trigger", "resolve"]
    assert hook.sent[1] == {"event_action": "resolve", "dedup_key": job.id}
    actions = [a["action"] for a in await esc.service.store.audit_entries(job.id)]
    assert actions.count("escalated") == 1 and "escalation_resolved" in actions
    assert "escalate" not in await esc.timer_names(job.id)


async def test_no_escalation_when_logins_come_back_in_time(
    esc: Engine, redis: aioredis.Redis, keys: Keys
) -> None:
    hook = FakeHook()
    pager = with_pager(esc, hook, redis, keys)
    job = await at_enable_gate(esc)
    assert "escalate" in await esc.timer_names(job.id)
    await tick_paging(esc, pager, 600)
    await esc.service.approve(job.id, await esc.gate(job.id), APPROVER)
    done = await esc.run_until(job.id, lambda j: j.terminal)
    assert "escalate" not in await esc.timer_names(job.id)  # disarmed with the approval
    await tick_paging(esc, pager, 3 * AFTER)
    assert done.state is State.SUCCEEDED
    assert await esc.events(job.id, EventKind.ESCALATED) == []
    assert await esc.events(job.id, EventKind.ESCALATION_RESOLVED) == []
    assert hook.sent == []


async def test_escalation_waits_for_a_human_to_be_awaited(
    redis: aioredis.Redis, keys: Keys, prefix: str, tmp_path: Path, inventory: Inventory,
    clock: FakeClock,
) -> None:
    """Logins off longer than the delay during a long reboot watch (no human asked yet):
    no escalation then; it comes as soon as the enable gate waits."""
    settings = make_settings(tmp_path, prefix, PPS_ESCALATE_AFTER_SECONDS=30.0,
                             PPS_POLL_SECONDS=10.0, PPS_SETTLE_SECONDS=5.0)
    stubs = Stubs(clock, settings, polls=6)
    engine = await Engine(redis, keys, settings, inventory, clock, stubs.registry()).start()
    job = await engine.create("solo")
    await engine.drain()
    await engine.service.approve(job.id, await engine.gate(job.id), APPROVER)
    watching = await engine.run_until(job.id, lambda j: j.step is Step.WATCH_REBOOT, step=1)
    assert watching.logins_disabled and "escalate" not in await engine.timer_names(job.id)
    gated = await engine.run_until(job.id, lambda j: j.step is Step.GATE_ENABLE
                                   and j.open_gate() is not None, step=10)
    assert gated.logins_disabled_at is not None
    assert clock.now() - gated.logins_disabled_at > 30
    assert await engine.events(job.id, EventKind.ESCALATED) == []  # nobody was asked yet
    await engine.tick(0)
    (ev,) = await engine.events(job.id, EventKind.ESCALATED)
    assert ev.data["channel"] == "C1"  # PPS_ESCALATION_CHANNEL unset: the card's channel
    assert ev.data["oncall"] == []


async def test_the_webhook_is_retried_with_backoff_and_sent_once(
    esc: Engine, redis: aioredis.Redis, keys: Keys
) -> None:
    hook = FakeHook(500, 503)
    pager = with_pager(esc, hook, redis, keys)
    job = await at_enable_gate(esc)
    await tick_paging(esc, pager, AFTER)
    await tick_paging(esc, pager, 0)
    assert len(hook.sent) == 1  # failed: the next attempt waits 15 s
    await tick_paging(esc, pager, 14)
    assert len(hook.sent) == 1
    await tick_paging(esc, pager, 1)
    assert len(hook.sent) == 2  # failed again: 30 s now
    await tick_paging(esc, pager, 29)
    assert len(hook.sent) == 2
    await tick_paging(esc, pager, 1)
    assert [b["event_action"] for b in hook.sent] == ["trigger"] * 3
    assert await PageMarks(redis, keys).outcome(job.id, "trigger") == "sent"
    await tick_paging(esc, pager, 3600)  # the safety-net attempt finds it sent
    assert len(hook.sent) == 3
    pages = [m for m in await esc.timers.all(job.id) if "|page|" in m]
    assert pages == []


async def test_a_resolve_waits_for_its_trigger_and_a_late_trigger_is_dropped(
    esc: Engine, redis: aioredis.Redis, keys: Keys
) -> None:
    hook = FakeHook(500)
    pager = with_pager(esc, hook, redis, keys)
    job = await at_enable_gate(esc)
    await tick_paging(esc, pager, AFTER)
    await tick_paging(esc, pager, 0)  # the trigger fails once
    await esc.service.approve(job.id, await esc.gate(job.id), APPROVER)
    await esc.run_until(job.id, lambda j: j.terminal, step=1)
    # Logins came back before the trigger got through: neither goes out.
    for _ in range(6):
        await tick_paging(esc, pager, 30)
    assert [b["event_action"] for b in hook.sent] == ["trigger"]
    marks = PageMarks(redis, keys)
    assert await marks.outcome(job.id, "trigger") == "skipped"
    assert await marks.outcome(job.id, "resolve") == "skipped"


async def test_a_job_waiting_since_before_the_upgrade_is_armed_by_its_next_reminder(
    esc: Engine, redis: aioredis.Redis, keys: Keys
) -> None:
    """A job held with logins off when this version was deployed has no escalate timer:
    its next reminder arms it, and it escalates (at once: it has waited long enough)."""
    hook = FakeHook()
    pager = with_pager(esc, hook, redis, keys)
    job = await at_enable_gate(esc)
    await redis.zrem(keys.timers, *[m for m in await esc.timers.all(job.id) if "|escalate|" in m])
    await tick_paging(esc, pager, AFTER + 60)  # the reminder fires (no escalation armed)
    assert await esc.events(job.id, EventKind.ESCALATED) == []
    assert "escalate" in await esc.timer_names(job.id)
    await tick_paging(esc, pager, 0)
    assert len(await esc.events(job.id, EventKind.ESCALATED)) == 1
