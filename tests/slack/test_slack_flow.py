"""Whole jobs through Slack with an in-process worker on a fast FakeCluster: the card, its
thread, the gate messages, the summary, reminders, dry runs, operator-assisted steps."""

from __future__ import annotations

import json
from typing import Any

from jobs.rules.model import State, Step
from tests.slack.slack_stack import StackFactory

REQ, A1, A2 = "U_REQUESTER", "U_APPROVER1", "U_APPROVER2"


def texts(msgs: list[Any]) -> str:
    return "\n".join(m.text + json.dumps(m.blocks, ensure_ascii=False) for m in msgs)


def assert_card_calls(st: Any, jid: str, *, edited: bool = True) -> Any:
    """Exactly one chat.postMessage made the card; every card post/update had metadata;
    `edited`: the card was updated in place at least once."""
    posts = [c for c in st.store.calls_of("chat.postMessage") if c.ok
             and not c.args.get("thread_ts")
             and (c.args.get("metadata") or {}).get("event_payload", {}).get("job_id") == jid]
    assert len(posts) == 1
    (card,) = st.cards(jid)
    updates = [c for c in st.calls_on("chat.update", card.ts) if c.ok]
    assert updates or not edited, "the card was edited in place"
    for c in [*posts, *updates]:
        meta = c.args["metadata"]
        assert meta["event_type"] == "pps_job"
        assert set(meta["event_payload"]) == {"job_id", "cluster", "state", "step"}
        assert meta["event_payload"]["job_id"] == jid
    return card


async def test_slack_happy_path_card_thread_and_summary(stack: StackFactory) -> None:
    st = await stack(worker=True)
    jid = await st.start_job("upgrade cluster-east")
    await st.click(A1, await st.open_gate(jid, Step.GATE_DISABLE), "pps_approve")
    enable = await st.open_gate(jid, Step.GATE_ENABLE)
    assert enable.reply_broadcast and "Enable all user logins" in texts([enable])
    await st.click(A2, enable, "pps_approve")
    job = await st.until_state(jid, State.SUCCEEDED)
    card = await st.card_in(jid, "succeeded", summary="upgraded to")
    assert card.channel == "C_EAST"
    assert "succeeded" in card.blocks[0]["text"]["text"]
    assert_card_calls(st, jid)
    thread = st.thread(card)
    body = texts(thread)
    for expected in ("1/11 Preflight checks: done", "11/11 Verify target build", "approved",
                     "cluster-east upgraded to 9.1R18", "User logins were disabled for",
                     "east-a", "system.cfg"):
        assert expected in body, expected
    # one message per gate, both decided (buttons gone) and naming the decider
    gates = [m for m in thread if "Approval requested:" in texts([m])]
    assert len(gates) == 2
    assert "Approval needed" not in body
    for m, who in zip(gates, (A1, A2), strict=True):
        assert m.edited and not any(b["type"] == "actions" for b in m.blocks)
        assert f"*Approved* by <@{who}>" in texts([m])
    # every thread reply once: no event produced two messages
    assert len({m.text for m in thread}) == len(thread)
    assert st.fakes["cluster-east"].login_permission is True
    assert job.logins_disabled is False


async def test_slack_reject_enable_holds_alerts_reminds_then_recovers(stack: StackFactory) -> None:
    st = await stack(worker=True, PPS_REMINDER_SECONDS=0.4)
    jid = await st.start_job("upgrade lab")
    await st.click(A1, await st.open_gate(jid, Step.GATE_DISABLE), "pps_approve")
    first = await st.open_gate(jid, Step.GATE_ENABLE)
    await st.click(A2, first, "pps_reject")
    await st.until_state(jid, State.HELD)
    card = await st.card_in(jid, "held")
    assert "User logins are disabled" in texts([card])

    async def reminded() -> bool:
        return "⏰" in texts([m for m in st.thread(card) if m.reply_broadcast])
    await st.wait_for(reminded, what="a broadcast reminder")
    alert = texts([m for m in st.thread(card) if m.reply_broadcast])
    assert "User logins are still disabled on lab" in alert
    second = await st.open_gate(jid, Step.GATE_ENABLE)
    assert second.ts != first.ts, "a fresh enable request, one message per gate"
    await st.click(A1, second, "pps_approve")
    await st.until_state(jid, State.SUCCEEDED)
    await st.card_in(jid, "succeeded")
    reminders = len([m for m in st.thread(card) if m.text.startswith("⏰")])
    await st.wait_for(lambda: _sleep_true(1.0), what="reminder cadence")
    assert len([m for m in st.thread(card) if m.text.startswith("⏰")]) == reminders, \
        "reminders stop once logins are enabled"
    assert_card_calls(st, jid)


async def _sleep_true(seconds: float) -> bool:
    import asyncio

    await asyncio.sleep(seconds)
    return True


async def test_slack_dry_run_posts_the_plan(stack: StackFactory) -> None:
    st = await stack(worker=True)
    jid = await st.start_job("upgrade cluster-east --dry-run")
    await st.until_state(jid, State.SUCCEEDED)
    card = await st.card_in(jid, "succeeded")

    async def plan() -> Any:
        return [m for m in st.thread(card) if m.text.startswith(f"Dry run {jid}")]
    (msg,) = await st.wait_for(plan, what="the plan")
    body = texts([msg])
    assert msg.reply_broadcast
    for expected in ("Preflight", "Plan", "Acting node", "Expected downtime", "20-30 min",
                     "Install firmware", "Nothing was changed"):
        assert expected in body, expected
    assert not st.gate_messages(jid)
    fake = st.fakes["cluster-east"]
    assert fake.login_permission is True
    assert all(n.build.startswith("9.1R17") for n in fake.nodes.values())
    # A dry run may end before the notifier first reads its job: the card is then posted
    # already final (it is rendered from the job record) and never needs an edit.
    assert_card_calls(st, jid, edited=False)


async def test_slack_operator_assisted_install_with_confirm(stack: StackFactory) -> None:
    st = await stack(worker=True, lab_extra={"manual": ["install"]})
    jid = await st.start_job("upgrade lab")
    await st.click(A1, await st.open_gate(jid, Step.GATE_DISABLE), "pps_approve")
    ask = await st.gate(jid, "pps_confirm")
    assert "Operator action needed" in texts([ask]) and "Done — verify" in texts([ask])
    # the requester may not confirm with the two-person rule on
    await st.click(REQ, ask, "pps_confirm")
    await st.ephemeral_containing(REQ, "Two-person rule")
    # confirmed without doing it: the bot says what it saw and asks again
    await st.click(A1, ask, "pps_confirm")
    async def asked_again() -> Any:
        m = await st.open_gate(jid, Step.INSTALL)
        return m if m.ts != ask.ts else None
    again = await st.wait_for(asked_again, what="a fresh confirm request")
    assert "Last check saw" in texts([again])
    fake = st.fakes["lab"]
    package = st.inventory.firmware_for("9.1R18").file
    fake.console_install("lab-1", package)
    await _sleep_true(0.35)  # the operator confirms once the node went down to install
    await st.click(A2, await st.open_gate(jid, Step.INSTALL), "pps_confirm")
    await st.click(A1, await st.open_gate(jid, Step.GATE_ENABLE), "pps_approve")
    await st.until_state(jid, State.SUCCEEDED)
    card = await st.card_in(jid, "succeeded")
    assert "(operator-assisted)" in texts([card])
