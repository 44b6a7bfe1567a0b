"""A whole upgrade as the contract describes it, checked literally from outside: the ack,
the busy refusal, one card per job (one post, then updates, each with `pps_job` metadata),
thread replies, the approval messages and their buttons, who may click what."""

from __future__ import annotations

import re
from typing import Any

from tests.acceptance.acceptance_stack import JOB_ID, wait_until
from tests.fakes import blob, has_buttons

Stack = Any
REQ, A1, A2, STRANGER = "U0REQ", "U0APPR1", "U0APPR2", "U0STRANGER"
TARGET = "9.1R18 (build 29865)"
JOB_STATES = {"scheduled", "queued", "running", "awaiting_approval", "waiting", "held",
              "succeeded", "failed", "cancelled"}


def card_calls(stack: Stack, job_id: str) -> tuple[list[Any], list[Any]]:
    """(chat.postMessage calls, chat.update calls) that targeted the job's card."""
    card = stack.card(job_id)
    assert card is not None
    calls, _, _ = stack.slack.snapshot()
    posts = [c for c in calls if c.method == "chat.postMessage" and c.ok
             and not c.args.get("thread_ts")
             and (c.args.get("metadata") or {}).get("event_payload", {}).get("job_id") == job_id]
    updates = [c for c in calls if c.method == "chat.update" and c.args.get("ts") == card.msg.ts
               and c.args.get("channel") == card.msg.channel]
    return posts, updates


def check_card_contract(stack: Stack, job_id: str, cluster: str, channel: str) -> None:
    """One post then updates, all in `channel`, all with complete `pps_job` metadata."""
    posts, updates = card_calls(stack, job_id)
    assert len(posts) == 1, [p.args.get("ts") for p in posts]
    assert posts[0].args["channel"] == channel
    assert updates, "the card was never updated"
    for call in [*posts, *updates]:
        meta = call.args.get("metadata")
        assert meta and meta["event_type"] == "pps_job", call.args
        payload = meta["event_payload"]
        assert set(payload) >= {"job_id", "cluster", "state", "step"}, payload
        assert payload["job_id"] == job_id and payload["cluster"] == cluster
        assert payload["state"] in JOB_STATES, payload
        assert isinstance(call.args.get("text"), str) and call.args["text"].strip()
    # No other top-level message for this job in any channel (one card per job).
    _, msgs, _ = stack.slack.snapshot()
    tops = [m for m in msgs if m.thread_ts is None and job_id in m.text + blob(m.blocks)]
    card = stack.card(job_id)
    assert [m.ts for m in tops] == [card.msg.ts], [m.text for m in tops]


def check_gate_message(msg: Any, card: Any) -> None:
    """Visible in the channel, Approve (primary) / Reject (danger), each with a confirm."""
    assert msg.channel == card.msg.channel
    assert msg.thread_ts is None or (msg.thread_ts == card.msg.ts and msg.broadcast), msg
    els = [e for b in msg.blocks if b["type"] == "actions" for e in b["elements"]]
    by_id = {e["action_id"]: e for e in els}
    assert set(by_id) == {"pps_approve", "pps_reject"}, by_id
    assert by_id["pps_approve"].get("style") == "primary"
    assert by_id["pps_reject"].get("style") == "danger"
    for e in els:
        assert e.get("confirm"), e
        assert e.get("value")
    assert msg.text.strip()


def test_acceptance_full_upgrade_with_two_approvers(stack: Stack) -> None:
    ack = stack.command(REQ, "upgrade east")
    assert ack["response_type"] == "ephemeral"
    m = re.search(r"`([A-Za-z0-9-]{1,24})`", ack["text"] + blob(ack.get("blocks")))
    assert m, ack
    jid = m.group(1)

    # A second upgrade while busy: refused, ephemeral, names the job and its requester.
    again = stack.command(A1, "upgrade east")
    assert again["response_type"] == "ephemeral"
    shown = again["text"] + blob(again.get("blocks"))
    assert f"`{jid}`" in shown and f"<@{REQ}>" in shown, again
    listing = blob(stack.command(A1, "list"))
    assert listing.count("east") == 1, listing

    busy = stack.command(A1, "status east")
    assert f"`{jid}`" in blob(busy) and f"<@{REQ}>" in blob(busy), busy
    disable = stack.open_gate(jid, 1)
    card = stack.card_in(jid, "awaiting_approval")
    assert card.msg.channel == "C0EAST"  # the cluster's channel, not PPS_CHANNEL
    check_gate_message(disable, card)

    # A stranger: refused ephemerally, nothing changes.
    before = len(stack.slack.snapshot()[0])
    stack.click(STRANGER, disable, "pps_approve")
    stack.ephemeral_for(STRANGER, "Only")
    stack.click(STRANGER, disable, "pps_reject")
    assert stack.card(jid).state == "awaiting_approval"
    assert stack.sim_state("east")["login_permission"] is True
    assert stack.slack.find(disable.channel, disable.ts).blocks == disable.blocks
    calls_after = [c.method for c in stack.slack.snapshot()[0][before:]]
    assert set(calls_after) <= {"chat.postEphemeral", "usergroups.users.list"}, calls_after

    # The requester cannot approve (two-person rule).
    stack.click(REQ, disable, "pps_approve")
    stack.ephemeral_for(REQ, "Two-person rule")
    assert stack.card(jid).state == "awaiting_approval"

    # A2 (member of the approver group S0APPRS) approves.
    stack.click(A2, disable, "pps_approve")
    decided = stack_wait_decided(stack, disable)
    assert f"<@{A2}>" in blob(decided.blocks) and "pproved" in blob(decided.blocks)
    # A late second click on the decided message: refusal naming the decider.
    stack.click(A1, disable, "pps_approve")
    stack.ephemeral_for(A1, f"Already decided by <@{A2}>")

    enable = stack.open_gate(jid, 2)
    assert enable.ts != disable.ts  # a new message for the enable gate
    check_gate_message(enable, stack.card(jid))
    assert stack.sim_state("east")["login_permission"] is False
    stack.click(A1, enable, "pps_approve")  # the same approver may decide both gates
    card = stack.card_in(jid, "succeeded")
    assert f"<@{A1}>" in blob(stack_wait_decided(stack, enable).blocks)

    state = stack.sim_state("east")
    assert [n["build"] for n in state["nodes"]] == [TARGET, TARGET]
    assert state["login_permission"] is True
    check_card_contract(stack, jid, "east", "C0EAST")
    thread = stack.thread(card)
    assert all(t.thread_ts == card.msg.ts for t in thread)
    # Each step's transition is a reply in the card's thread, and a summary ends it.
    replies = " ".join(t.text for t in thread)
    for n in range(1, 12):
        assert f"{n}/11" in replies, (n, replies)
    summary = blob(thread[-1].blocks)
    assert thread[-1].broadcast and "disabled for" in summary and "Preflight" in summary
    # The disable request names what matters (DESIGN §1 step 4), the enable one the builds.
    asked = blob(disable.blocks)
    for needle in ("east", "9.1R18", "3 active sessions", "20-30 min", "Pulse"):
        assert needle in asked, needle
    assert "9.1R18 (build 29865)" in blob(enable.blocks)

    # Status and history name the finished job.
    status = stack.command(REQ, f"status {jid}")
    assert status["response_type"] == "ephemeral" and jid in blob(status)
    assert "succeeded" in blob(status).lower()
    hist = blob(stack.command(REQ, "history east"))
    assert jid in hist
    assert jid in blob(stack.command(REQ, "history"))
    assert not stack.slack.problems, stack.slack.problems


def stack_wait_decided(stack: Stack, gate: Any) -> Any:

    def decided() -> Any:
        m = stack.slack.find(gate.channel, gate.ts)
        return m if m is not None and m.updates and not has_buttons(m) else None
    return wait_until(f"gate message {gate.ts} updated without buttons", decided, 10)


def test_acceptance_downgrade_needs_the_flag(stack: Stack) -> None:
    """After the upgrade above, east runs 9.1R18: 9.1R17 is a downgrade."""
    if stack.sim_state("east")["nodes"][0]["build"] != TARGET:
        stack.loop.run(stack.sim.set_node("east", "east-a", {"build": TARGET}))
        stack.loop.run(stack.sim.set_node("east", "east-b", {"build": TARGET}))
    ack = stack.command(REQ, "upgrade east 9.1R17 --dry-run")
    m = JOB_ID.search(ack["text"])
    if m and "queued" in ack["text"]:
        card = stack.card_in(m.group(1), "failed", "succeeded")
        assert card.state == "failed"
        thread = " ".join(t.text + blob(t.blocks) for t in stack.thread(card))
        assert "downgrade" in thread.lower(), thread
    else:
        assert "downgrade" in blob(ack).lower(), ack
    jid = stack.upgrade(REQ, "upgrade east 9.1R17 --dry-run --allow-downgrade")
    assert stack.card_in(jid, "failed", "succeeded").state == "succeeded"
