"""Change records (issue 11, item 4) against the stand-ins: `/pps report <job-id>` uploads the
Markdown record into the job's thread with files.getUploadURLExternal + the upload +
files.completeUploadExternal; `ppsbot report` (a real CLI process) prints the same record,
as Markdown and as JSON."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from jobs.rules.model import Job, Step
from sim.slack.store import Message
from tests.fakes import PPSBOT, child_env
from tests.slack.slack_stack import REQUESTER, Stack, StackFactory

A1, A2 = "U_APPROVER1", "U_APPROVER2"


async def finished_job(st: Stack) -> Job:
    jid = await st.start_job("upgrade lab")
    await st.click(A1, await st.open_gate(jid, Step.GATE_DISABLE), "pps_approve")
    await st.click(A2, await st.open_gate(jid, Step.GATE_ENABLE), "pps_approve")
    await st.card_in(jid, "succeeded", summary="upgraded to")
    return await st.job(jid)


async def shared_file(st: Stack, card: Message) -> tuple[Message, dict[str, Any]]:
    async def found() -> tuple[Message, dict[str, Any]] | None:
        for m in st.thread(card):
            if m.files:
                return m, m.files[0]
        return None

    got: tuple[Message, dict[str, Any]] = await st.wait_for(found, what="the shared file")
    return got


async def ppsbot_report(st: Stack, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "REDIS_URL": st.settings.REDIS_URL,
           "PPS_REDIS_PREFIX": st.settings.PPS_REDIS_PREFIX}
    proc = await asyncio.create_subprocess_exec(
        str(PPSBOT), "report", *args, env=child_env(env),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return int(proc.returncode or 0), out.decode(), err.decode()


async def test_a_report_is_uploaded_to_the_thread_and_printed_by_the_cli(
    stack: StackFactory,
) -> None:
    st = await stack(worker=True)
    job = await finished_job(st)
    ack = await st.ack_text(f"report {job.id}", trigger_id="T-report-1")
    assert f"`{job.id}`" in ack and "in its thread" in ack
    card = st.cards(job.id)[0]
    msg, f = await shared_file(st, card)
    assert f["name"] == f"change-record-{job.id}-lab.md" and job.id in f["title"]
    assert f"<@{REQUESTER}>" in msg.text and job.id in msg.text
    md = (await st.http.get(f["url_private"])).text
    assert md.startswith(f"# Change record {job.id}: upgrade of lab to {job.target}")
    assert f"| Requested by | {REQUESTER} |" in md and "| Outcome | succeeded |" in md
    who = md.split("## Who did what", 1)[1].split("## Steps", 1)[0]
    assert f"| {REQUESTER} | requested |" in who
    assert f"| {A1} | approved | gate_disable |" in who
    assert f"| {A2} | approved | gate_enable |" in who
    assert "| bot | finished: succeeded |" in who
    steps = md.split("## Steps", 1)[1].split("## Builds", 1)[0]
    for title in ("Preflight", "Disable all user logins", "Verify"):
        assert title.lower() in steps.lower()
    builds = job.outputs.builds_before or {}
    after = job.outputs.builds_after or {}
    for node, build in builds.items():
        assert f"| {node} | {build} | {after[node]} |" in md
    assert "User logins were off from " in md
    for b in job.outputs.backups or []:
        assert str(b["sha256"]) in md and str(b["file"]) in md
    assert md.split("## Errors", 1)[1].strip().startswith("None.")
    assert len(st.store.calls_of("files.getUploadURLExternal")) == 1
    (complete,) = st.store.calls_of("files.completeUploadExternal")
    assert complete.args["channel_id"] == card.channel and complete.args["thread_ts"] == card.ts

    # Slack delivering the same command again uploads nothing more.
    await st.ack_text(f"report {job.id}", trigger_id="T-report-1")
    await asyncio.sleep(0.5)
    assert len(st.store.calls_of("files.completeUploadExternal")) == 1

    # The CLI prints the same record, both forms.
    code, out, err = await ppsbot_report(st, job.id, "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["schema"] == "pps-chatops/change-record/v1"
    assert data["job"]["id"] == job.id and data["job"]["state"] == "succeeded"
    assert data["job"]["requested_by"] == REQUESTER
    decided = [(a["actor"], a["action"]) for a in data["audit"] if a["human"]]
    assert decided == [(REQUESTER, "create"), (A1, "approved"), (A2, "approved")]
    assert data["logins_off"]["still_off"] is False and data["logins_off"]["seconds"] > 0
    assert [b["sha256"] for b in data["backups"]["files"]] == \
        [b["sha256"] for b in job.outputs.backups or []]
    assert data["builds"] == {"before": builds, "after": after}
    assert data["errors"] == [] and data["escalation"] is None
    code, out, err = await ppsbot_report(st, job.id)
    assert code == 0, err
    strip = [line for line in out.splitlines() if not line.startswith("_Generated")]
    assert strip == [line for line in md.splitlines() if not line.startswith("_Generated")]
    code, out, err = await ppsbot_report(st, "J-9999", "--format", "md")
    assert code == 1 and "no job J-9999" in err and out == ""


async def test_report_of_an_unknown_job_is_refused(stack: StackFactory) -> None:
    st = await stack()
    ack = await st.ack_text("report J-0404")
    assert "No job `J-0404`" in ack
    ack = await st.ack_text("report")
    assert "report &lt;job-id&gt;" in ack
    assert st.store.calls_of("files.getUploadURLExternal") == []
