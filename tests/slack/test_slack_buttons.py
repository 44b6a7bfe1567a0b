"""Gate buttons end to end: signed clicks -> bot -> engine (in-process worker on a fast
FakeCluster) -> notifier -> the stand-in. Who may click, and how often a click counts."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from jobs.rules.model import Decision, GateKind, State, Step
from sim.slack.signing import block_actions_body, block_actions_payload
from tests.fakes import has_buttons
from tests.slack.slack_stack import StackFactory

REQ, A1, A2, STRANGER = "U_REQUESTER", "U_APPROVER1", "U_APPROVER2", "U_STRANGER"




async def at_gate(st: Any, jid: str, step: Step) -> Any:
    async def ready() -> bool:
        job = await st.job(jid)
        return job.step is step and job.state is State.AWAITING_APPROVAL
    await st.wait_for(ready, what=f"{jid} at {step}")
    return await st.job(jid)


async def test_slack_requester_refused_with_two_person_rule(stack: StackFactory) -> None:
    st = await stack(worker=True)
    jid = await st.start_job()
    msg = await st.gate(jid)
    before = await at_gate(st, jid, Step.GATE_DISABLE)
    resp = await st.click(REQ, msg, "pps_approve")
    assert resp.status_code == 200
    refusal = await st.ephemeral_containing(REQ, "Two-person rule")
    assert refusal.thread_ts == msg.thread_ts  # shown where the button was
    job = await st.job(jid)
    assert (job.state, job.step, job.approvals) == (before.state, before.step, [])
    assert has_buttons(st.store.find(msg.channel, msg.ts))


async def test_slack_requester_may_approve_without_two_person_rule(stack: StackFactory) -> None:
    st = await stack(worker=True, PPS_TWO_PERSON_RULE=False)
    jid = await st.start_job()
    msg = await st.gate(jid)
    await st.click(REQ, msg, "pps_approve")

    async def approved() -> bool:
        return any(a["user"] == REQ and a["decision"] == "approved"
                   for a in (await st.job(jid)).approvals)
    await st.wait_for(approved, what="requester's approval")
    assert not [m for m in st.ephemerals(REQ) if "Two-person" in m.text]


async def test_slack_approver_through_user_group_and_message_updated(stack: StackFactory) -> None:
    st = await stack(worker=True)
    jid = await st.start_job()
    msg = await st.gate(jid)
    await st.click(A1, msg, "pps_approve")

    async def decided() -> Any:
        m = st.store.find(msg.channel, msg.ts)
        return m if m.edited and not has_buttons(m) else None
    updated = await st.wait_for(decided, what="approval message updated")
    text = json.dumps(updated.blocks)
    assert "*Approved* by <@U_APPROVER1> at" in text
    assert st.store.calls_of("usergroups.users.list"), "group membership came from Slack"
    job = await st.job(jid)
    gate = job.latest_gate(Step.GATE_DISABLE, GateKind.APPROVAL)
    assert gate is not None and (gate.decision, gate.decided_by) == (Decision.APPROVED, A1)


async def test_slack_stranger_refused_and_nothing_changes(stack: StackFactory) -> None:
    st = await stack(worker=True)
    jid = await st.start_job()
    msg = await st.gate(jid)
    await at_gate(st, jid, Step.GATE_DISABLE)
    for action in ("pps_approve", "pps_reject"):
        await st.click(STRANGER, msg, action)
    await st.ephemeral_containing(STRANGER, "Only approvers of lab can do that")
    await st.ephemeral_containing(STRANGER, "Only the requester or approvers of lab")
    job = await st.job(jid)
    assert job.state is State.AWAITING_APPROVAL and job.approvals == []


async def test_slack_two_concurrent_clicks_make_one_transition(stack: StackFactory) -> None:
    st = await stack(worker=True)
    jid = await st.start_job()
    msg = await st.gate(jid)
    await at_gate(st, jid, Step.GATE_DISABLE)
    r1, r2 = await asyncio.gather(st.click(A1, msg, "pps_approve"),
                                  st.click(A2, msg, "pps_approve"))
    assert r1.status_code == r2.status_code == 200

    async def one_refused() -> Any:
        return [m for u in (A1, A2) for m in st.ephemerals(u) if "Already decided by" in m.text]
    (refusal,) = await st.wait_for(one_refused, what="the losing click's refusal")
    job = await st.job(jid)
    decisions = [a for a in job.approvals if a["step"] == "gate_disable"]
    assert len(decisions) == 1
    winner = decisions[0]["user"]
    assert refusal.ephemeral_for != winner and f"<@{winner}>" in refusal.text
    # a later click on the old message is stale too
    await st.click(A2, msg, "pps_reject")
    await st.wait_for(lambda: _count(st, A2, "Already decided by", at_least=1 if
                                     refusal.ephemeral_for == A1 else 2), what="stale reject")
    assert len((await st.job(jid)).approvals) >= 1
    assert [a for a in (await st.job(jid)).approvals if a["decision"] == "rejected"] == []


async def _count(st: Any, user: str, text: str, at_least: int) -> bool:
    return len([m for m in st.ephemerals(user) if text in m.text]) >= at_least


async def test_slack_redelivered_click_counts_once(stack: StackFactory) -> None:
    st = await stack(worker=True)
    jid = await st.start_job()
    msg = await st.gate(jid)
    await at_gate(st, jid, Step.GATE_DISABLE)
    button = next(el for b in msg.blocks if b["type"] == "actions" for el in b["elements"]
                  if el["action_id"] == "pps_approve")
    payload = block_actions_payload(user_id=A1, channel_id=msg.channel,
                                    message=msg.slack_shape(), action_id="pps_approve",
                                    value=button["value"], response_url="http://x/none",
                                    action_ts="1800000000.123456")
    body = block_actions_body(payload)
    for retry in (None, 1):
        assert (await st.signer.send(st.http, body, retry_num=retry)).status_code == 200
    await st.wait_for(lambda: _approved_by(st, jid, A1), what="approval")
    await asyncio.sleep(0.3)  # room for a wrongly handled duplicate to show up
    assert not st.ephemerals(A1), "a re-delivery is ignored silently, not refused"
    assert len([a for a in (await st.job(jid)).approvals if a["step"] == "gate_disable"]) == 1


async def _approved_by(st: Any, jid: str, user: str) -> bool:
    return any(a["user"] == user for a in (await st.job(jid)).approvals)


async def test_slack_requester_reject_cancels_before_anything_changed(stack: StackFactory) -> None:
    st = await stack(worker=True)
    jid = await st.start_job()
    msg = await st.gate(jid)
    await st.click(REQ, msg, "pps_reject")

    async def cancelled() -> bool:
        return (await st.job(jid)).state is State.CANCELLED
    await st.wait_for(cancelled, what="cancel")

    async def closed() -> Any:
        m = st.store.find(msg.channel, msg.ts)
        return m if m.edited and not has_buttons(m) else None
    m = await st.wait_for(closed, what="approval message closed")
    assert "*Rejected* by <@U_REQUESTER>" in json.dumps(m.blocks)
    assert st.fakes["lab"].login_permission is True
