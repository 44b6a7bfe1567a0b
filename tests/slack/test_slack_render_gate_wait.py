"""The messages of issue 9, items 7, 11 and 12 render to valid Block Kit: reminders that
mention the approvers (users and groups), an expired disable gate, the rate-limit ephemeral
and the maintenance-window refusal."""

from __future__ import annotations

import json

from bot.render.commands import render_reply
from bot.render.gates import approval_decided
from bot.render.limits import Message
from bot.render.thread import mentions, thread_post
from handlers.replies import RateLimited, Refused
from jobs.rules.errors import OutsideWindow
from jobs.rules.events import Event, EventKind
from jobs.rules.model import Decision, GateKind, Job, State, Step
from sim.slack.blocks import check_message

T0 = 1_800_000_000.0


def job() -> Job:
    return Job(id="J-0007", cluster="cluster-east", target="9.1R18", requester="U_REQ",
               channel="C1", state=State.AWAITING_APPROVAL, step=Step.GATE_DISABLE,
               created_at=T0, card_ts="1.000001")


def text_of(msg: Message) -> str:
    check_message(msg.kwargs())
    return json.dumps(msg.kwargs(), ensure_ascii=False)


def test_slack_render_a_reminder_mentions_user_and_group_approvers() -> None:
    ev = Event("J-0007", EventKind.REMINDER, 9, T0, {
        "since": T0, "gate_id": "G01-abcdef",
        "text": "Job `J-0007` has waited since 10:00 UTC (30 min) for approval",
        "approvers": ["U0APPROVER", "W0ENTERPRISE", "S0GROUP", "<!channel>", "not-an-id"]})
    post = thread_post(job(), ev)
    assert post is not None and post.broadcast
    text = text_of(post.message)
    assert "<@U0APPROVER> <@W0ENTERPRISE> <!subteam^S0GROUP>" in text
    assert "<!channel>" not in text and "not-an-id" not in text
    assert mentions([]) == ""


def test_slack_render_an_expired_gate_names_no_decider() -> None:
    j = job()
    gate = j.add_gate(GateKind.APPROVAL, Step.GATE_DISABLE, T0)
    j.decide_gate(gate.id, Decision.EXPIRED, "", T0 + 14400)
    done = approval_decided(j, j.gate(gate.id) or gate, {"summary": ["Disable all logins"]})
    text = text_of(done)
    assert "Expired" in text and "nothing changed" in text and "<@>" not in text
    assert not [b for b in done.blocks if b["type"] == "actions"]
    ev = Event("J-0007", EventKind.GATE_DECIDED, 10, T0, {
        "gate_id": gate.id, "decision": "expired", "user": "", "step": "gate_disable"})
    post = thread_post(j, ev)
    assert post is not None
    line = text_of(post.message)
    assert "No answer in time" in line and "cancelled" in line and "<@>" not in line


def test_slack_render_the_rate_limit_and_window_refusals() -> None:
    limited = text_of(render_reply(RateLimited(20, T0 + 1800, T0)))
    assert "20 upgrade requests in the last hour" in limited
    assert "2027-01-15 08:30 UTC" in limited and "in about 30 min" in limited
    refusal = OutsideWindow("J-0007", "cluster-east", "Sat 01:00-05:00 Europe/Berlin",
                            "Sat 2030-01-05 06:10 CET", "Sat 2030-01-12 01:00 CET")
    text = text_of(render_reply(Refused(refusal.message)))
    assert "outside the maintenance window of cluster-east" in text
    assert "Sat 2030-01-12 01:00 CET" in text and "abort" in text
