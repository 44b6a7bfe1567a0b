"""Mentions only from us: whatever an appliance answers, an inventory names or a user types,
no message the bot builds can mention, link or broadcast through it. The only markup left
in a message is the bot's own mentions of the people who acted on the job."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from bot.render.card import card
from bot.render.commands import render_reply
from bot.render.gates import approval_decided, approval_request, operator_request
from bot.render.limits import Message
from bot.render.summary import dry_run_plan, final_summary
from bot.render.thread import thread_post
from handlers.replies import ClusterList, ClusterReport, JobList, JobReport, Queued, Refused
from jobs.config.inventory import Cluster, Node, parse_inventory
from jobs.fleet.model import ClusterReading, NodeReading
from jobs.fleet.view import ClusterFacts, FleetFacts
from jobs.procedures import UPGRADE
from jobs.rules.events import Event, EventKind
from jobs.rules.model import Decision, GateKind, Job, State, Step, StepRecord, StepStatus
from jobs.rules.outputs import Outputs

StackFactory = Any
HOSTILE = "x <@U0EVIL> <#C0EVIL> <!here> <!channel> <https://evil.example|click> & y"
REQ, APP = "U_REQ", "U_APP"
T0 = 1_800_000_000.0
TOKEN = re.compile(r"<[^<>]*>")
OURS = {f"<@{REQ}>", f"<@{APP}>", "<#C0PPS>"}


def _markup(msg: Message) -> set[str]:
    """Every angle-bracket token Slack would read as markup: fallback and mrkdwn texts."""
    texts = [msg.text]

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for x in node:
                walk(x)
        elif isinstance(node, dict):
            if node.get("type") == "mrkdwn":
                texts.append(str(node.get("text")))
            for v in node.values():
                walk(v)
    walk(msg.blocks)
    return {t for text in texts for t in TOKEN.findall(text)}


def hostile_job() -> Job:
    """A job whose every outside field (appliance answers, names) is hostile."""
    job = Job(id="J-0042", cluster="east" + HOSTILE, target="9.1R18" + HOSTILE,
              requester=REQ, channel="C0PPS", state=State.HELD, step=Step.GATE_ENABLE,
              created_at=T0, card_ts="1.1", logins_disabled=True, logins_disabled_at=T0,
              acting_node="east-a" + HOSTILE, error="Install failed: " + HOSTILE,
              held_reason=f"enable request rejected by <@{APP}>; " + HOSTILE)
    for step in UPGRADE.steps:
        job.set_step_record(step, StepRecord(StepStatus.DONE, T0, T0 + 5, detail=HOSTILE))
    gate = job.add_gate(GateKind.APPROVAL, Step.GATE_DISABLE, T0)
    job.decide_gate(gate.id, Decision.APPROVED, APP, T0 + 1)
    job.approvals.append({"gate": gate.id, "step": "gate_disable", "decision": "approved",
                          "user": APP, "at": T0 + 1})
    job.outputs = Outputs.model_validate({"builds_before": {"east-a" + HOSTILE: "9.1R17" + HOSTILE},
                   "builds_after": {"east-a" + HOSTILE: "9.1R18" + HOSTILE},
                   "backups": [{"file": "system.cfg" + HOSTILE, "sha256": HOSTILE, "size": 1}],
                   "backup_dir": "backups/" + HOSTILE,
                   "preflight": [{"check": HOSTILE, "ok": True, "detail": HOSTILE}]})
    return job


def hostile_fleet(cluster: Cluster, job: Job) -> FleetFacts:
    """The fleet view of `cluster` with a reading whose every string is hostile."""
    node = NodeReading("east-a" + HOSTILE, "9.1R17" + HOSTILE, "9.1R16" + HOSTILE,
                       "Leader" + HOSTILE, error="refused " + HOSTILE)
    reading = ClusterReading(cluster.name, T0, (node,), False, 3)
    return FleetFacts((ClusterFacts(cluster, reading, None, job, "9.1R18"),), "9.1R18", 300.0, T0)


def every_message(job: Job) -> list[Message]:
    k = EventKind
    events = [
        (k.STEP_DONE, {"step": "backup", "detail": HOSTILE, "duration": 1.0}),
        (k.STEP_FAILED, {"step": "install", "error": HOSTILE}),
        (k.STATE, {"from": "running", "to": "held", "reason": HOSTILE}),
        (k.PROGRESS, {"step": "watch_reboot", "text": HOSTILE}),
        (k.GATE_DECIDED, {"gate_id": "G01", "decision": "approved", "user": APP,
                          "step": "gate_disable"}),
        (k.REMINDER, {"since": T0, "text": HOSTILE, "mention": ["U0EVIL>|<!here", REQ]}),
        (k.LOGINS_DISABLED_ALERT, {"text": HOSTILE}),
        (k.PLAN, {"preflight": [{"check": HOSTILE, "ok": True, "detail": HOSTILE}],
                  "plan": {"steps": [{"step": "install", "note": HOSTILE}],
                           "acting_node": HOSTILE, "package": {"file": HOSTILE},
                           "window": HOSTILE}}),
        (k.FINISHED, {"state": "failed", "summary": {
            "builds_before": job.outputs.builds_before,
            "builds_after": job.outputs.builds_after, "backups": job.outputs.backups,
            "error": HOSTILE, "aborted_by": APP}}),
    ]
    posts = [thread_post(job, Event(job.id, kind, i, T0, d)) for i, (kind, d) in
             enumerate(events, 1)]
    evidence = {"summary": [HOSTILE], "reason": HOSTILE}
    gate = job.latest_gate(Step.GATE_DISABLE, GateKind.APPROVAL)
    assert gate is not None
    cluster = Cluster(name="east", mode="active-active", username_env="U", password_env="P",
                      nodes=(Node("east-a" + HOSTILE, "https://a"), Node("b", "https://b")))
    replies = [Queued(job, True, "C0PPS"), Queued(job, False, "C0PPS"), JobReport(job),
               ClusterReport(cluster, job, None), ClusterReport(cluster, None, job),
               JobList("Recent jobs", [job], "none"), ClusterList(hostile_fleet(cluster, job)),
               # a refusal is the bot's own words (user input in it is grammar-checked):
               # its mentions stay, a broadcast or a link never does
               Refused(f"Cluster busy: requested by <@{REQ}>, <!here> <https://evil|x> &")]
    return [
        card(job), *(p.message for p in posts if p is not None),
        approval_request(job, "G02", Step.GATE_ENABLE, evidence),
        approval_decided(job, gate, evidence),
        operator_request(job, "G03", Step.INSTALL, {"instructions": f"open {HOSTILE}\n2.",
                                                    "reason": HOSTILE, "saw": HOSTILE}),
        final_summary(job, events[-1][1]), dry_run_plan(job, events[-2][1]),
        *(render_reply(r) for r in replies),
    ]


def test_mentions_only_from_us_in_every_message_kind() -> None:
    job = hostile_job()
    messages = every_message(job)
    assert len(messages) == 23
    for msg in messages:
        assert _markup(msg) <= OURS, (_markup(msg) - OURS, msg.text)
    rendered = json.dumps([m.blocks for m in messages])
    assert "&lt;@U0EVIL&gt;" in rendered and "&lt;!here&gt;" in rendered  # shown, escaped
    assert f"<@{REQ}>" in json.dumps(card(job).blocks)  # our own mentions stay
    assert f"rejected by <@{APP}>" in json.dumps(card(job).blocks)


async def test_hostile_node_names_never_mention_in_slack(
    stack: StackFactory, tmp_path: Path
) -> None:
    """End to end: an inventory node name (which is also what the appliance answers as its
    host name) reaches the cards, the plan and `/pps clusters` escaped."""
    firmware = []
    for v in ("9.1R17", "9.1R18"):
        f = tmp_path / f"pps-{v}.pkg"
        f.write_bytes(f"package {v}\n".encode())
        firmware.append({"version": v, "file": f.name,
                         "sha256": hashlib.sha256(f.read_bytes()).hexdigest()})
    inventory = parse_inventory({"clusters": {"lab": {
        "mode": "standalone", "username_env": "PPS_U", "password_env": "PPS_P",
        "nodes": [{"name": "lab-1<!here><@U0EVIL>", "url": "https://lab-1.example.net"}]}},
        "firmware": firmware}, tmp_path, env={"PPS_U": "u", "PPS_P": "p"})
    st = await stack(worker=True, inventory=inventory)
    assert "&lt;!here&gt;" in await st.ack_text("clusters")
    jid = await st.start_job("upgrade lab --dry-run")
    await st.card_in(jid, "succeeded", summary="Dry run")
    calls = [c for c in st.store.calls if c.method.startswith("chat.")]
    sent = json.dumps([c.args for c in calls])
    assert "lab-1&lt;!here&gt;" in sent  # the node was named, escaped
    for c in calls:
        raw = json.dumps(c.args)
        assert "<!here>" not in raw and "<@U0EVIL>" not in raw, (c.method, raw[:500])
