"""The card never runs ahead of the channel: when an edit shows the job waiting on a human,
the message with the buttons is already posted; when it shows the job over, the summary is.

The test drives jobs of its own (both gates approved; the first gate rejected), so it
checks every kind of edit the rule is about whether it runs alone, first or last. The
autouse fixture repeats the check after every test on `stack`.
"""

from __future__ import annotations

from typing import Any

from tests.acceptance.acceptance_checks import order_problems

Stack = Any
REQ, A1, A2 = "U0REQ", "U0APPR1", "U0APPR2"


def card_states(stack: Stack, job_id: str) -> list[str]:
    """The states the job's card showed, edit by edit (from the `pps_job` metadata)."""
    card = stack.card(job_id)
    assert card is not None, f"no card for {job_id}"
    calls, _, _ = stack.slack.snapshot()
    return [
        str((c.args.get("metadata") or {}).get("event_payload", {}).get("state"))
        for c in calls
        if c.ok and c.method == "chat.update" and c.args.get("ts") == card.msg.ts
    ]


def test_acceptance_card_never_runs_ahead_of_the_channel(stack: Stack) -> None:
    approved = stack.upgrade(REQ, "upgrade lab18")
    stack.click(A1, stack.open_gate(approved, 1), "pps_approve")
    second = stack.open_gate(approved, 2)
    stack.card_in(approved, "awaiting_approval")  # an edit: the card was posted long ago
    stack.click(A2, second, "pps_approve")
    stack.card_in(approved, "succeeded")
    rejected = stack.upgrade(REQ, "upgrade lab19")
    first = stack.open_gate(rejected, 1)
    stack.card_in(rejected, "awaiting_approval")
    stack.click(A1, first, "pps_reject")
    stack.card_in(rejected, "cancelled")

    # The edits the rule is about happened in this test: the check has work to do.
    shown = card_states(stack, approved)
    assert "awaiting_approval" in shown and "succeeded" in shown, shown
    assert "cancelled" in card_states(stack, rejected), card_states(stack, rejected)
    problems = order_problems(stack)
    assert not problems, "\n".join(problems)
