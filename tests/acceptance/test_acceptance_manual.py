"""Operator-assisted steps (DESIGN §4.5): `manual: [logins]` on lab16. The gate is decided
first, then instructions with a `pps_confirm` button; the bot verifies by reading the
appliance and, when verification fails, says what it saw and posts a fresh button."""

from __future__ import annotations

from typing import Any

from tests.acceptance.acceptance_stack import wait_until
from tests.fakes import blob, has_buttons

Stack = Any
REQ, A1, A2, STRANGER = "U0REQ", "U0APPR1", "U0APPR2", "U0STRANGER"


def test_acceptance_manual_logins_confirmed_and_verified(stack: Stack) -> None:
    jid = stack.upgrade(REQ, "upgrade lab16")
    stack.click(A1, stack.open_gate(jid, 1), "pps_approve")
    first = stack.with_button(jid, "pps_confirm")
    els = [e for b in first.blocks if b["type"] == "actions" for e in b["elements"]]
    assert [e["action_id"] for e in els] == ["pps_confirm"] and els[0].get("confirm")
    assert first.broadcast or first.thread_ts is None
    assert "Disable" in blob(first.blocks)
    # Strangers and (two-person rule) the requester may not confirm.
    stack.click(STRANGER, first, "pps_confirm")
    stack.ephemeral_for(STRANGER, "Only")
    stack.click(REQ, first, "pps_confirm")
    stack.ephemeral_for(REQ, "Two-person rule")
    # Confirmed without doing it: the bot reads the appliance, says what it saw, asks again.
    stack.click(A2, first, "pps_confirm")
    second = stack.with_button(jid, "pps_confirm", after=first)
    assert second.ts != first.ts
    assert "saw" in blob(second.blocks).lower(), second.blocks
    assert not has_buttons(stack.slack.find(first.channel, first.ts))
    assert "install" not in stack.writes("lab16")
    # Done by hand for real this time.
    stack.configure("lab16", {"login_permission": False})
    stack.click(A2, second, "pps_confirm")
    stack.click(A1, stack.open_gate(jid, 2), "pps_approve")
    third = stack.with_button(jid, "pps_confirm", after=second)
    assert "Enable" in blob(third.blocks)
    stack.configure("lab16", {"login_permission": True})
    stack.click(A1, third, "pps_confirm")
    stack.card_in(jid, "succeeded")
    assert "login_permission" not in stack.writes("lab16")  # the bot never switched them
    wait_until("the last confirm closed",
               lambda: not has_buttons(stack.slack.find(third.channel, third.ts)), 10)
