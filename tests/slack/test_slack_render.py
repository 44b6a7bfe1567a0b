"""Every message kind renders to Block Kit Slack accepts (parsed by slack_sdk models, within
the limits of SLACK.md, 50 blocks at most, short fallback text), with user text escaped."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.render.card import card
from bot.render.commands import render_reply
from bot.render.gates import approval_decided, approval_request, operator_decided, operator_request
from bot.render.limits import (
    MAX_BLOCKS,
    MAX_FALLBACK_TEXT,
    Message,
    escape,
    escape_keep_mentions,
    message,
    section,
)
from bot.render.summary import dry_run_plan, final_summary
from bot.render.thread import thread_post
from handlers.replies import (
    Aborted,
    ClusterList,
    ClusterReport,
    Failed,
    HelpText,
    JobList,
    JobReport,
    Queued,
    Refused,
    Reply,
    Usage,
)
from jobs.config.inventory import Cluster, Node
from jobs.fleet.view import ClusterFacts, FleetFacts
from jobs.procedures import UPGRADE
from jobs.rules.events import Event, EventKind
from jobs.rules.model import Decision, GateKind, Job, State, Step, StepRecord, StepStatus
from jobs.rules.outputs import Outputs
from sim.slack.blocks import check_message

EVIL = "<!channel> & <@U0EVIL> <https://evil.example|click>"
T0 = 1_800_000_000.0


def assert_valid(msg: Message) -> None:
    """What Slack would accept: the stand-in's check plus the bot's own fallback rule."""
    check_message(msg.kwargs())
    assert 0 < len(msg.text) <= MAX_FALLBACK_TEXT
    assert len(msg.blocks) <= MAX_BLOCKS
    if msg.metadata is not None:
        assert msg.metadata["event_type"] == "pps_job"


def long_job(nodes: int = 40) -> Job:
    """A job that has been through everything: every step, many gates, long texts."""
    names = [f"node-{i:02d}" for i in range(nodes)]
    job = Job(id="J-0042", cluster="cluster-east", target="9.1R18", requester="U_REQ",
              channel="C1", state=State.HELD, step=Step.GATE_ENABLE, created_at=T0,
              updated_at=T0 + 9000, card_ts="1.000001", logins_disabled=True,
              logins_disabled_at=T0 + 600, acting_node="node-00",
              error="Verify failed: " + EVIL * 80, held_reason="rejected by <@U_APP> " + EVIL)
    for i, step in enumerate(UPGRADE.steps):
        job.set_step_record(step, StepRecord(StepStatus.DONE if i < 8 else StepStatus.WAITING,
                                             T0 + i * 100, T0 + i * 100 + 42 if i < 8 else None,
                                             detail=("detail " + EVIL) * 20))
    for i in range(30):
        g = job.add_gate(GateKind.APPROVAL, Step.GATE_ENABLE, T0 + i)
        job.decide_gate(g.id, Decision.REJECTED, "U_APP", T0 + i + 1)
        job.approvals.append({"gate": g.id, "step": "gate_enable", "decision": "rejected",
                              "user": "U_APP", "at": T0 + i})
    job.manual = {"install": "the inventory lists 'install' as manual " + EVIL}
    job.outputs = Outputs.model_validate({
        "builds_before": {n: "9.1R17 (build 27583)" for n in names},
        "builds_after": {n: "9.1R18 (build 28000) " + EVIL for n in names},
        "backups": [{"file": f"system-{i}.cfg", "sha256": "ab" * 32, "size": 12345}
                    for i in range(20)],
        "backup_dir": "backups/cluster-east/J-0042",
        "preflight": [{"check": f"auth node-{i}", "ok": i % 3 != 0, "detail": "answers " + EVIL}
                      for i in range(nodes)],
    })
    return job


def summary_data(job: Job) -> dict[str, Any]:
    return {"state": "failed", "summary": {
        "durations": {s.value: 3725.0 for s in UPGRADE.steps}, "total_seconds": 99999,
        "logins_disabled_seconds": 5400, "builds_before": job.outputs.builds_before,
        "builds_after": job.outputs.builds_after, "backups": job.outputs.backups,
        "error": job.error, "aborted_by": "U_ABORT"}}


def plan_data(nodes: int = 40) -> dict[str, Any]:
    return {"preflight": [{"check": "x", "ok": True, "detail": "fine " + EVIL}] * nodes,
            "plan": {"steps": [{"step": s.value, "title": "t", "note": "note " + EVIL * 5}
                               for s in UPGRADE.steps],
                     "acting_node": "node-00", "package": {"file": "pps.pkg"},
                     "backup_dir": "b", "gates": ["a", "b"], "downtime": "20-30 min",
                     "sessions": 120, "window": "Sat 01:00-05:00 Europe/Berlin",
                     "manual": ["install"]}}


def all_events(job: Job) -> list[Event]:
    k = EventKind
    data: list[tuple[EventKind, dict[str, Any]]] = [
        (k.CREATED, {"dry_run": False, "scheduled_at": None}),
        (k.STEP_STARTED, {"step": "install"}),
        (k.STEP_DONE, {"step": "backup", "detail": "system.cfg " + EVIL, "duration": 12.5}),
        (k.STEP_FAILED, {"step": "verify", "error": "node-01 runs 9.1R17 " + EVIL * 50}),
        (k.STATE, {"from": "running", "to": "held", "reason": "rejected " + EVIL}),
        (k.STATE, {"from": "scheduled", "to": "queued", "reason": ""}),
        (k.STATE, {"from": "running", "to": "waiting", "reason": ""}),
        (k.PROGRESS, {"step": "watch_reboot", "text": "east-a rebooted " + EVIL}),
        (k.GATE_DECIDED, {"gate_id": "G01-x", "decision": "approved", "user": "U_A",
                          "step": "gate_disable"}),
        (k.GATE_DECIDED, {"gate_id": "G02-x", "decision": "aborted", "user": "U_A",
                          "step": "gate_enable"}),
        (k.REMINDER, {"since": T0, "text": "User logins disabled " + EVIL}),
        (k.LOGINS_DISABLED_ALERT, {"text": "Install failed: " + EVIL * 60}),
        (k.PLAN, plan_data()),
        (k.FINISHED, summary_data(job)),
    ]
    return [Event(job.id, kind, i + 1, T0, d) for i, (kind, d) in enumerate(data)]


def rendered(msg: Message) -> str:
    return json.dumps(msg.kwargs(), ensure_ascii=False)


def test_slack_render_card_of_a_long_job() -> None:
    job = long_job()
    msg = card(job)
    assert_valid(msg)
    assert msg.metadata == {"event_type": "pps_job", "event_payload": {
        "job_id": "J-0042", "cluster": "cluster-east", "state": "held", "step": "gate_enable"}}
    text = rendered(msg)
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    assert "<@U0EVIL>" not in text  # outside text never mentions
    assert "rejected by <@U_APP>" in text  # the engine's mention of a decider stays
    for step_title in ("Preflight checks", "Verify target build and cluster health"):
        assert step_title in text


@pytest.mark.parametrize("state", list(State))
def test_slack_render_card_in_every_state(state: State) -> None:
    job = long_job(nodes=2)
    job.state = state
    job.scheduled_at = T0 + 3600
    for dry in (False, True):
        job.dry_run = dry
        msg = card(job)
        assert_valid(msg)
        assert msg.metadata is not None and msg.metadata["event_payload"]["state"] == state.value


def test_slack_render_thread_post_for_every_event_kind() -> None:
    job = long_job()
    posted = {}
    for ev in all_events(job):
        post = thread_post(job, ev)
        if post is None:
            continue
        assert_valid(post.message)
        assert "<!channel>" not in rendered(post.message)
        posted[ev.kind] = post.broadcast
    assert posted == {
        EventKind.STEP_DONE: False, EventKind.STEP_FAILED: False, EventKind.STATE: False,
        EventKind.PROGRESS: False, EventKind.GATE_DECIDED: False, EventKind.REMINDER: True,
        EventKind.LOGINS_DISABLED_ALERT: True, EventKind.PLAN: True, EventKind.FINISHED: True,
    }


def test_slack_render_gate_messages_and_decided_forms() -> None:
    job = long_job()
    evidence = {"summary": ["Disable all user logins " + EVIL] * 80, "reason": EVIL}
    for step in (Step.GATE_DISABLE, Step.GATE_ENABLE):
        req = approval_request(job, "G03-5f2a9c", step, evidence)
        assert_valid(req)
        actions = [b for b in req.blocks if b["type"] == "actions"]
        assert len(actions) == 1
        approve, reject = actions[0]["elements"]
        assert (approve["action_id"], approve["style"]) == ("pps_approve", "primary")
        assert (reject["action_id"], reject["style"]) == ("pps_reject", "danger")
        assert approve["confirm"] and reject["confirm"]
        assert json.loads(approve["value"]) == {"job": "J-0042", "gate": "G03-5f2a9c"}
        gate = job.add_gate(GateKind.APPROVAL, step, T0)
        job.decide_gate(gate.id, Decision.APPROVED, "U_APP", T0 + 60)
        done = approval_decided(job, job.gate(gate.id) or gate, evidence)
        assert_valid(done)
        assert not [b for b in done.blocks if b["type"] == "actions"]
        text = rendered(done)
        assert "*Approved* by <@U_APP> at" in text
    manual = {"instructions": ("Open the admin console " + EVIL + "\n") * 300,
              "reason": "install call not supported " + EVIL, "saw": "still on 9.1R17 " + EVIL}
    req = operator_request(job, "G09-aaaaaa", Step.INSTALL, manual)
    assert_valid(req)
    (button,) = next(b for b in req.blocks if b["type"] == "actions")["elements"]
    assert (button["action_id"], button["text"]["text"]) == ("pps_confirm", "Done — verify")
    gate = job.add_gate(GateKind.CONFIRM, Step.INSTALL, T0)
    job.decide_gate(gate.id, Decision.CONFIRMED, "U_REQ", T0 + 5)
    assert_valid(operator_decided(job, job.gate(gate.id) or gate, manual))


def test_slack_render_summary_and_plan() -> None:
    job = long_job(nodes=60)
    msg = final_summary(job, summary_data(job))
    assert_valid(msg)
    text = rendered(msg)
    assert "User logins were disabled for *1 h 30 min*" in text
    assert "node-00" in text and "system-0.cfg" in text
    plan = dry_run_plan(job, plan_data(nodes=60))
    assert_valid(plan)
    assert "Expected downtime" in rendered(plan)


def test_slack_render_every_command_reply() -> None:
    job = long_job(nodes=3)
    cluster = Cluster(name="cluster-east", mode="active-passive",
                      nodes=(Node("east-a", "https://a"), Node("east-b", "https://b")),
                      username_env="U", password_env="P")
    replies: list[Reply] = [
        Usage(f"`{EVIL}` is not a cluster name.", "/pps upgrade <cluster>"), Usage(),
        HelpText(), Refused("Cluster busy: `J-1` by <@U1> " + EVIL), Queued(job, True, "C1"),
        Queued(job, False, "C1"), JobReport(job), ClusterReport(cluster, job, None),
        ClusterReport(cluster, None, job), ClusterReport(cluster, None, None),
        JobList("Recent jobs", [job] * 20, "none"), JobList("x", [], "No jobs."),
        ClusterList(FleetFacts(tuple(ClusterFacts(cluster, None, job, job, "9.1R18")
                                     for _ in range(30)), "9.1R18", 300.0, T0)),
        Aborted(job), Failed("abc123"),
    ]
    for r in replies:
        msg = render_reply(r)
        assert_valid(msg)
        assert "<!channel>" not in rendered(msg), r


def test_slack_render_caps_at_50_blocks_and_says_so() -> None:
    msg = message("many", [section(f"line {i}") for i in range(120)])
    assert len(msg.blocks) == MAX_BLOCKS
    assert "71 more blocks not shown" in json.dumps(msg.blocks[-1])
    assert_valid(msg)


def test_slack_escaping() -> None:
    assert escape("a & <b> <!here>") == "a &amp; &lt;b&gt; &lt;!here&gt;"
    assert escape_keep_mentions("by <@U12> in <#C9> <!channel> <@U1|x>", channels=True) == (
        "by <@U12> in <#C9> &lt;!channel&gt; &lt;@U1|x&gt;")
    assert escape_keep_mentions("by <@U12> and <@U13> in <#C9>", {"U12"}) == (
        "by <@U12> and &lt;@U13&gt; in &lt;#C9&gt;")


def test_slack_render_reminder_naming_hundreds_of_approvers() -> None:
    job = long_job()
    ids = [f"U_BAPP{n:05d}" for n in range(450)]
    ev = Event(job.id, EventKind.REMINDER, 9, 1.0,
               {"text": "User logins on lab have been disabled since 10:00 UTC (5 min).",
                "approvers": ids})
    post = thread_post(job, ev)
    assert post is not None
    assert_valid(post.message)  # was 3003 characters: invalid_blocks
    text = post.message.blocks[0]["text"]["text"]
    assert text.count("<@U_BAPP") == 20 and "and 430 more approvers" in text


def test_slack_render_clipped_mention_stays_within_the_section_limit() -> None:
    line = " ".join(f"<@U{n:09d}>" for n in range(400))  # clipped inside a mention
    msg = message(line, [section(line)])
    assert_valid(msg)
    assert len(msg.blocks[0]["text"]["text"]) <= 3000
