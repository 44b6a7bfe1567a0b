"""Dry runs, scheduled starts, failed jobs in history, and Slack answering errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.acceptance.acceptance_stack import job_id_in, wait_until
from tests.fakes import blob, has_buttons

Stack = Any
REQ, A1, A2 = "U0REQ", "U0APPR1", "U0APPR2"


def _thread_text(stack: Stack, jid: str) -> str:
    card = stack.card(jid)
    return " ".join(m.text + blob(m.blocks) for m in stack.thread(card))


def test_acceptance_dry_run_shows_preflight_and_plan_and_changes_nothing(stack: Stack) -> None:
    before = stack.sim_state("lab6")
    jid = stack.upgrade(REQ, "upgrade lab6 --dry-run")
    card = stack.card_in(jid, "succeeded", "failed")
    assert card.state == "succeeded", _thread_text(stack, jid)
    text = _thread_text(stack, jid)
    assert "reflight" in text and "9.1R18" in text, text
    assert "lan" in text  # "Plan"/"plan"
    assert stack.writes("lab6") == []
    after = stack.sim_state("lab6")
    assert after["login_permission"] is True
    assert [n["build"] for n in after["nodes"]] == [n["build"] for n in before["nodes"]]
    assert stack.gate_messages(jid) == []
    assert jid in blob(stack.command(REQ, "history lab6"))


def test_acceptance_scheduled_job_is_listed_and_abortable(stack: Stack) -> None:
    at = (datetime.now() + timedelta(hours=3)).strftime("%H:%M")
    ack = stack.command(REQ, f"upgrade lab7 --at {at}")
    assert ack["response_type"] == "ephemeral"
    assert "schedul" in blob(ack).lower(), ack
    jid = job_id_in(ack)
    stack.card_in(jid, "scheduled")
    assert jid in blob(stack.command(REQ, "list"))
    assert jid in blob(stack.command(REQ, "status"))
    assert jid in blob(stack.command(REQ, "status lab7"))
    assert "schedul" in blob(stack.command(REQ, f"status {jid}")).lower()
    # ISO-8601 is accepted too, but the cluster is taken.
    iso = (datetime.now() + timedelta(days=1)).replace(microsecond=0).isoformat()
    busy = stack.command(A1, f"upgrade lab7 --at {iso}")
    assert jid in blob(busy)
    ack = stack.command(REQ, f"abort {jid}")
    assert ack["response_type"] == "ephemeral"
    stack.card_in(jid, "cancelled")
    assert jid not in blob(stack.command(REQ, "list"))
    assert stack.writes("lab7") == []
    # A start time a few seconds ahead: the job waits, then starts on its own.
    soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat(timespec="seconds")
    ack = stack.command(REQ, f"upgrade lab7 --dry-run --at {soon}")
    later = job_id_in(ack)
    stack.card_in(later, "scheduled")
    stack.card_in(later, "succeeded", timeout=15)
    assert "Start time reached" in " ".join(m.text for m in stack.thread(stack.card(later)))


def test_acceptance_history_lists_succeeded_failed_cancelled(stack: Stack) -> None:
    stack.configure("lab8", {"faults": {"empty_export": True}})
    failed = stack.upgrade(REQ, "upgrade lab8")
    stack.card_in(failed, "failed")
    stack.configure("lab8", {"faults": {"empty_export": False}})
    cancelled = stack.upgrade(REQ, "upgrade lab8")
    stack.open_gate(cancelled, 1)
    stack.command(REQ, f"abort {cancelled}")
    stack.card_in(cancelled, "cancelled")
    ok = stack.upgrade(REQ, "upgrade lab8 --dry-run")
    stack.card_in(ok, "succeeded")
    hist = stack.command(REQ, "history lab8")
    assert hist["response_type"] == "ephemeral"
    shown = blob(hist)
    for jid in (failed, cancelled, ok):
        assert jid in shown, (jid, shown)
    status = blob(stack.command(REQ, f"status {failed}"))
    assert "failed" in status.lower() and "empty" in status.lower(), status
    assert "login_permission" not in stack.writes("lab8")


ERRORS = [
    pytest.param(200, {"ok": False, "error": "internal_error"}, id="internal_error"),
    pytest.param(500, {"ok": False, "error": "fatal_error"}, id="http500"),
    pytest.param(429, {"ok": False, "error": "ratelimited"}, id="ratelimited"),
    pytest.param(200, {"ok": False, "error": "service_unavailable"}, id="service_unavailable"),
    pytest.param(200, {"ok": False, "error": "some_new_error"}, id="unknown_error"),
    pytest.param(502, {}, id="http502-empty"),
]


@pytest.mark.parametrize(("status", "body"), ERRORS)
def test_acceptance_card_reaches_final_state_when_last_update_fails_once(
    stack: Stack, status: int, body: dict[str, Any]
) -> None:
    def final_update(args: dict[str, Any]) -> bool:
        meta = args.get("metadata") or {}
        return bool(meta.get("event_payload", {}).get("state") == "succeeded")

    stack.slack.inject("chat.update", status, body, when=final_update)
    jid = stack.upgrade(REQ, "upgrade lab9 --dry-run")
    stack.card_in(jid, "succeeded", timeout=15)
    assert not stack.slack.fail_when  # the injected error was served


def test_acceptance_gate_message_closed_when_its_update_fails_once(stack: Stack) -> None:
    def closing(args: dict[str, Any]) -> bool:
        return "pps_approve" not in blob(args.get("blocks")) and "Approval" in str(
            args.get("text", ""))

    stack.slack.inject("chat.update", 200, {"ok": False, "error": "internal_error"},
                       when=closing)
    jid = stack.upgrade(REQ, "upgrade lab10")
    gate = stack.open_gate(jid, 1)
    stack.click(REQ, gate, "pps_reject")
    stack.card_in(jid, "cancelled")
    wait_until("the gate message closed",
               lambda: not has_buttons(stack.slack.find(gate.channel, gate.ts)), 10)
    assert not stack.slack.fail_when


def test_acceptance_posts_failing_once_are_retried_without_duplicates(stack: Stack) -> None:
    def card_post(args: dict[str, Any]) -> bool:
        return not args.get("thread_ts") and bool(args.get("metadata"))

    def gate_post(args: dict[str, Any]) -> bool:
        return "pps_approve" in blob(args.get("blocks"))

    stack.slack.inject("chat.postMessage", 500, {"ok": False, "error": "fatal_error"},
                       when=card_post)
    stack.slack.inject("chat.postMessage", 200, {"ok": False, "error": "odd_error"},
                       when=gate_post)

    jid = stack.upgrade(REQ, "upgrade lab9")
    gate = stack.open_gate(jid, 1)
    assert not stack.slack.fail_when
    assert len(stack.gate_messages(jid)) == 1
    stack.click(REQ, gate, "pps_reject")
    stack.card_in(jid, "cancelled")
    _, msgs, _ = stack.slack.snapshot()
    assert len([m for m in msgs if m.thread_ts is None and jid in m.text]) == 1


def test_acceptance_maintenance_window(stack: Stack) -> None:
    """Outside the window preflight refuses; `--at HH:MM` is read in the window's zone."""
    jid = stack.upgrade(REQ, "upgrade lab17")
    card = stack.card_in(jid, "failed")
    assert "window" in _thread_text(stack, jid).lower() + blob(card.msg.blocks).lower()
    assert stack.writes("lab17") == []
    window = next(w for w in [blob(stack.command(REQ, "clusters"))] if "Asia/Tokyo" in w)
    start = window.split("window ")[1][:5]  # "HH:00"
    ack = stack.command(REQ, f"upgrade lab17 --at {start}")
    later = job_id_in(ack)
    stack.card_in(later, "scheduled")
    tokyo = datetime.now(ZoneInfo("Asia/Tokyo"))
    due = datetime.combine(tokyo.date(), datetime.strptime(start, "%H:%M").time(),
                           ZoneInfo("Asia/Tokyo"))
    if due <= tokyo:
        due += timedelta(days=1)
    shown = blob(ack) + blob(stack.command(REQ, f"status {later}"))
    utc = due.astimezone(UTC)
    assert f"{utc:%Y-%m-%d %H:%M} UTC" in shown or f"{due:%Y-%m-%d %H:%M}" in shown, shown
    stack.command(REQ, f"abort {later}")
    stack.card_in(later, "cancelled")


def test_acceptance_card_edit_refused_does_not_hold_back_the_request(stack: Stack) -> None:
    """Slack refuses, for good, the card edit to `awaiting_approval`: the approval request
    is in the channel all the same and the job goes on; later edits bring the card up."""
    def gate_card(args: dict[str, Any]) -> bool:
        payload = (args.get("metadata") or {}).get("event_payload", {})
        return bool(payload.get("state") == "awaiting_approval")

    stack.slack.inject("chat.update", 200, {"ok": False, "error": "cant_update_message"},
                       when=gate_card)
    jid = stack.upgrade(REQ, "upgrade lab10")
    gate = stack.open_gate(jid, 1, timeout=10)
    # The gate message may come before the card edit that Slack refuses: wait for that edit.
    wait_until("the refused card edit", lambda: not stack.slack.fail_when, timeout=10)
    stack.click(REQ, gate, "pps_reject")
    stack.card_in(jid, "cancelled")
