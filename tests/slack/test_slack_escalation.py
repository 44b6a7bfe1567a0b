"""Escalation against the stand-ins (issue 11, item 3): the bot over HTTP, an in-process
worker, real Redis, the Slack stand-in as Slack and its webhook receiver as PagerDuty. Logins
off too long while the enable request waits: one message in PPS_ESCALATION_CHANNEL
mentioning PPS_ONCALL, a note in the card's thread, a `trigger`; the approval resolves it
(a reply to the call, a `resolve`). Logins back in time: nothing."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from jobs.rules.events import EventKind
from jobs.rules.model import Step
from sim.slack.store import Message
from tests.slack.slack_stack import PPS_CHANNEL, Stack, StackFactory

A1 = "U_APPROVER1"
ONCALL = "C_ONCALL"


async def hooks(st: Stack) -> list[dict[str, Any]]:
    resp = await st.http.get(f"{st.standin_url}/_standin/webhook")
    calls: list[dict[str, Any]] = resp.json()["calls"]
    return calls


def top_level(st: Stack, channel: str) -> list[Message]:
    return [m for m in st.store.channels.get(channel, []) if m.thread_ts is None]


def blob(msg: Message) -> str:
    return msg.text + json.dumps(msg.blocks, ensure_ascii=False)


async def escalating_stack(stack: StackFactory, after: float) -> Stack:
    st = await stack(worker=True, PPS_ESCALATE_AFTER_SECONDS=after,
                     PPS_ONCALL="U0ONCALL,S0ONCALL", PPS_ESCALATION_CHANNEL=ONCALL)
    # The receiver's address is known once the stand-in listens; the worker reads it per page.
    st.settings.PPS_ESCALATION_WEBHOOK = f"{st.standin_url}/_standin/webhook"
    return st


async def test_an_escalation_and_its_resolve(stack: StackFactory) -> None:
    st = await escalating_stack(stack, after=1.0)
    jid = await st.start_job("upgrade lab")
    await st.click(A1, await st.open_gate(jid, Step.GATE_DISABLE), "pps_approve")
    enable = await st.open_gate(jid, Step.GATE_ENABLE)

    async def called() -> Message | None:
        msgs = top_level(st, ONCALL)
        return msgs[0] if msgs else None

    call = await st.wait_for(called, what="the escalation message")
    text = blob(call)
    assert "<@U0ONCALL>" in text and "<!subteam^S0ONCALL>" in text
    assert jid in text and "user logins are still disabled on lab" in text.lower()
    card = st.cards(jid)[0]
    assert card.channel == PPS_CHANNEL
    note = await st.wait_for(lambda: _reply_with(st, card, f"<#{ONCALL}>"), what="the note")
    assert "Escalated to on-call" in note.text

    async def triggered() -> list[dict[str, Any]]:
        return [c for c in await hooks(st) if c["body"].get("event_action") == "trigger"]

    (trigger,) = await st.wait_for(triggered, what="the webhook trigger")
    assert trigger["status"] == 202 and trigger["body"]["dedup_key"] == jid
    assert trigger["body"]["payload"]["severity"] == "critical"
    assert trigger["body"]["payload"]["source"] == "lab"

    await st.click(A1, enable, "pps_approve")  # the same approver may decide both gates
    await st.card_in(jid, "succeeded")

    async def resolved() -> Message | None:
        return next((m for m in st.store.channels.get(ONCALL, [])
                     if m.thread_ts == call.ts and "Resolved" in m.text), None)

    reply = await st.wait_for(resolved, what="the all-clear under the escalation")
    assert "enabled again" in blob(reply)

    async def resolves() -> list[dict[str, Any]]:
        return [c for c in await hooks(st) if c["body"].get("event_action") == "resolve"]

    (res,) = await st.wait_for(resolves, what="the webhook resolve")
    assert res["status"] == 202 and res["body"] == {"event_action": "resolve",
                                                    "dedup_key": jid}
    assert len(top_level(st, ONCALL)) == 1  # escalated once
    assert len(await hooks(st)) == 2


async def test_no_escalation_when_logins_come_back_before_the_deadline(
    stack: StackFactory,
) -> None:
    after = 4.0
    st = await escalating_stack(stack, after=after)
    jid = await st.start_job("upgrade lab")
    await st.click(A1, await st.open_gate(jid, Step.GATE_DISABLE), "pps_approve")
    await st.click(A1, await st.open_gate(jid, Step.GATE_ENABLE), "pps_approve")
    await st.card_in(jid, "succeeded")
    job = await st.job(jid)
    assert job.logins_disabled_at is not None and job.logins_enabled_at is not None
    assert job.logins_enabled_at - job.logins_disabled_at < after
    # Wait past the deadline: nothing may come.
    await asyncio.sleep(max(0.0, job.logins_disabled_at + after + 1.0 - time.time()))
    assert top_level(st, ONCALL) == []
    assert await hooks(st) == []
    events = await st.service.store.events(jid)
    assert not [e for e in events if e.kind in (EventKind.ESCALATED,
                                                 EventKind.ESCALATION_RESOLVED)]


async def _reply_with(st: Stack, card: Message, needle: str) -> Message | None:
    return next((m for m in st.thread(card) if needle in blob(m)), None)
