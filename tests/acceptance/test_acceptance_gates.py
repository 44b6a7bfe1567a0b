"""Rejections, held jobs and reminders, aborts at each stage, from outside."""

from __future__ import annotations

import itertools
import time
from typing import Any

from tests.acceptance.acceptance_stack import wait_until
from tests.fakes import blob, has_buttons

Stack = Any
REQ, A1, A2, STRANGER = "U0REQ", "U0APPR1", "U0APPR2", "U0STRANGER"


def reminders(stack: Stack, jid: str) -> list[Any]:
    card = stack.card(jid)
    return [m for m in stack.thread(card) if m.text.startswith("⏰")]


def wait_buttons_gone(stack: Stack, gate: Any) -> Any:

    def done() -> Any:
        m = stack.slack.find(gate.channel, gate.ts)
        return m if m is not None and not has_buttons(m) else None
    return wait_until(f"gate {gate.ts} without buttons", done, 10)


def test_acceptance_requester_rejects_disable_gate_cancels(stack: Stack) -> None:
    requester = "U0OPS9"  # neither an approver nor in the approver group
    jid = stack.upgrade(requester, "upgrade lab1")
    gate = stack.open_gate(jid, 1)
    assert gate.channel == "C0PPS"  # no cluster channel: PPS_CHANNEL
    stack.click(requester, gate, "pps_approve")
    stack.ephemeral_for(requester, "Only approvers")
    stack.click(requester, gate, "pps_reject")
    stack.card_in(jid, "cancelled")
    decided = wait_buttons_gone(stack, gate)
    assert f"<@{requester}>" in blob(decided.blocks) and "ejected" in blob(decided.blocks)
    assert stack.sim_state("lab1")["login_permission"] is True
    assert not {"login_permission", "install"} & set(stack.writes("lab1"))
    # The cluster is free again.
    assert "No active" in blob(stack.command(REQ, "status lab1")) or \
        "no active job" in blob(stack.command(REQ, "status lab1"))


def test_acceptance_reject_enable_gate_holds_with_reminders(stack: Stack) -> None:
    jid = stack.upgrade(REQ, "upgrade lab2")
    stack.click(A1, stack.open_gate(jid, 1), "pps_approve")
    enable = stack.open_gate(jid, 2)
    assert stack.sim_state("lab2")["login_permission"] is False
    stack.click(A2, enable, "pps_reject")
    card = stack.card_in(jid, "held")
    assert stack.sim_state("lab2")["login_permission"] is False
    # One loud message in the channel says logins are still disabled and what to do.
    _, msgs, _ = stack.slack.snapshot()
    loud = [m for m in msgs if m.channel == card.msg.channel
            and (m.thread_ts is None or m.broadcast) and "still disabled" in m.text]
    assert loud, [m.text for m in stack.thread(card)]
    # Reminders, as broadcast thread replies, about every PPS_REMINDER_SECONDS (0.5 s).
    held_at = time.monotonic()
    wait_until("two reminders while held",
               lambda: len([r for r in reminders(stack, jid)]) >= 2, 8)
    rs = reminders(stack, jid)
    assert all(r.broadcast and r.thread_ts == card.msg.ts for r in rs)
    calls, _, _ = stack.slack.snapshot()
    at = [c.at for c in calls if c.method == "chat.postMessage"
          and str(c.args.get("text", "")).startswith("⏰") and c.ok
          and c.args.get("thread_ts") == card.msg.ts]
    gaps = [b - a for a, b in itertools.pairwise(at)]
    assert gaps and all(0.35 < g < 1.5 for g in gaps), gaps  # PPS_REMINDER_SECONDS=0.5
    # The enable request is still offered and still works.
    offered = stack.open_gate(jid, len(stack.gate_messages(jid)))
    stack.click(A1, offered, "pps_approve")
    stack.card_in(jid, "succeeded")
    assert stack.sim_state("lab2")["login_permission"] is True
    count = len(reminders(stack, jid))
    time.sleep(1.5)
    assert len(reminders(stack, jid)) == count, "reminders went on after logins were enabled"
    assert time.monotonic() - held_at < 20
    assert not stack.slack.problems, stack.slack.problems


def test_acceptance_abort_before_disable_cancels(stack: Stack) -> None:
    jid = stack.upgrade(REQ, "upgrade lab3")
    gate = stack.open_gate(jid, 1)
    ack = stack.command(REQ, f"abort {jid}")
    assert ack["response_type"] == "ephemeral" and jid in blob(ack)
    stack.card_in(jid, "cancelled")
    wait_buttons_gone(stack, gate)
    assert not {"login_permission", "install"} & set(stack.writes("lab3"))
    # A click on the closed gate changes nothing and says why.
    stack.click(A1, gate, "pps_approve")
    stack.ephemeral_for(A1, f"<@{REQ}>")
    assert stack.card(jid).state == "cancelled"


def test_acceptance_abort_while_disabling_goes_to_enable_gate(stack: Stack) -> None:
    jid = stack.upgrade(REQ, "upgrade lab4")
    gate = stack.open_gate(jid, 1)
    stack.configure("lab4", {"faults": {"slow_seconds": 1.5}})
    stack.click(A1, gate, "pps_approve")
    wait_until("the disable step running",
               lambda: stack.card(jid).payload.get("step") in ("disable_logins", 5), 10)
    ack = stack.command(REQ, f"abort {jid}")
    assert ack["response_type"] == "ephemeral", ack
    assert "enable" in blob(ack).lower(), ack
    stack.configure("lab4", {"faults": {"slow_seconds": 0}})
    enable = stack.open_gate(jid, 2)
    assert "install" not in stack.writes("lab4")
    stack.click(A2, enable, "pps_approve")
    stack.card_in(jid, "cancelled", "succeeded")
    assert stack.sim_state("lab4")["login_permission"] is True
    assert "install" not in stack.writes("lab4")


def test_acceptance_abort_during_install_is_refused_with_reason(stack: Stack) -> None:
    stack.configure("lab5", {"knobs": {"reboot_seconds": 1.5}})
    jid = stack.upgrade(REQ, "upgrade lab5")
    stack.click(A1, stack.open_gate(jid, 1), "pps_approve")
    wait_until("the install to start", lambda: "install" in stack.writes("lab5"), 10)
    ack = stack.command(REQ, f"abort {jid}")
    assert ack["response_type"] == "ephemeral"
    assert "Cannot abort" in blob(ack) and "install" in blob(ack), ack
    stack.click(A2, stack.open_gate(jid, 2), "pps_approve")
    stack.card_in(jid, "succeeded")


def test_acceptance_install_refused_keeps_logins_alarm_until_enabled(stack: Stack) -> None:
    stack.configure("lab14", {"faults": {"install_status": 422}})  # a clear refusal
    jid = stack.upgrade(REQ, "upgrade lab14")
    stack.click(A1, stack.open_gate(jid, 1), "pps_approve")
    enable = stack.open_gate(jid, 2)
    card = stack.card_in(jid, "failed", "held")
    assert stack.sim_state("lab14")["login_permission"] is False
    _, msgs, _ = stack.slack.snapshot()
    loud = [m for m in msgs if m.channel == card.msg.channel
            and (m.thread_ts is None or m.broadcast) and "still disabled" in m.text]
    assert loud, [m.text for m in stack.thread(card)]
    wait_until("two reminders", lambda: len(reminders(stack, jid)) >= 2, 8)
    stack.click(A1, enable, "pps_approve")  # the same approver decides both gates
    wait_until("logins enabled", lambda: stack.sim_state("lab14")["login_permission"], 10)
    card = stack.card_in(jid, "failed")
    assert "install" in blob(card.msg.blocks).lower()
    count = len(reminders(stack, jid))
    time.sleep(1.5)
    assert len(reminders(stack, jid)) == count
    assert "no active job" in blob(stack.command(REQ, "status lab14"))
