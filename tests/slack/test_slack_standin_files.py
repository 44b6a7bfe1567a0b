"""The stand-in's file upload (Slack's external upload, three steps) and its escalation
webhook receiver (PagerDuty Events API v2 shapes), driven over HTTP as a client would."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from sim.slack.standin import create_standin_app

AUTH = {"Authorization": "Bearer xoxb-test"}


@pytest.fixture
async def app() -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    standin = create_standin_app("http://127.0.0.1:9/slack/events", "s")
    transport = httpx.ASGITransport(app=standin)
    async with httpx.AsyncClient(transport=transport, base_url="http://slack") as c:
        yield c, standin


async def test_a_file_is_uploaded_and_shared_into_a_thread(
    app: tuple[httpx.AsyncClient, Any],
) -> None:
    c, standin = app
    parent = (await c.post("/api/chat.postMessage", headers=AUTH,
                           json={"channel": "C1", "text": "card"})).json()
    data = b"# record\n"
    got = (await c.post("/api/files.getUploadURLExternal", headers=AUTH,
                        data={"filename": "r.md", "length": str(len(data))})).json()
    assert got["ok"] and got["upload_url"].startswith("http://slack/_standin/upload/")
    short = await c.post(got["upload_url"], content=data[:-1])
    assert short.status_code == 400  # not the length announced
    done = await c.post(got["upload_url"], files={"file": ("r.md", data)})  # multipart too
    assert done.status_code == 200 and done.text == f"OK - {len(data)}"
    files = json.dumps([{"id": got["file_id"], "title": "Record"}])
    shared = (await c.post("/api/files.completeUploadExternal", headers=AUTH, data={
        "files": files, "channel_id": "C1", "thread_ts": parent["ts"],
        "initial_comment": "here"})).json()
    assert shared == {"ok": True, "files": [{"id": got["file_id"], "title": "Record"}]}
    (msg,) = [m for m in standin.state.standin.channels["C1"] if m.thread_ts == parent["ts"]]
    assert msg.text == "here" and msg.files[0]["title"] == "Record"
    assert (await c.get(f"/_standin/files/{got['file_id']}")).content == data
    listed = (await c.get("/_standin/files")).json()["files"]
    assert listed[0]["shared_in"] == "C1" and listed[0]["uploaded"] is True


async def test_the_upload_methods_refuse_what_slack_refuses(
    app: tuple[httpx.AsyncClient, Any],
) -> None:
    c, standin = app
    nobody = await c.post("/api/files.getUploadURLExternal", data={"filename": "a",
                                                                   "length": "1"})
    assert nobody.json() == {"ok": False, "error": "not_authed"}
    bad = await c.post("/api/files.getUploadURLExternal", headers=AUTH, data={"filename": "a"})
    assert bad.json()["error"] == "invalid_arguments"
    got = (await c.post("/api/files.getUploadURLExternal", headers=AUTH,
                        data={"filename": "a", "length": "3"})).json()
    early = await c.post("/api/files.completeUploadExternal", headers=AUTH, data={
        "files": json.dumps([{"id": got["file_id"]}]), "channel_id": "C1"})
    assert early.json()["error"] == "file_not_found"  # not uploaded yet
    await c.post(got["upload_url"], content=b"abc")
    lost = await c.post("/api/files.completeUploadExternal", headers=AUTH, data={
        "files": json.dumps([{"id": got["file_id"]}]), "channel_id": "C1",
        "thread_ts": "1.000001"})
    assert lost.json()["error"] == "thread_not_found"
    garbled = await c.post("/api/files.completeUploadExternal", headers=AUTH,
                           data={"files": "[{", "channel_id": "C1"})
    assert garbled.json()["error"] == "invalid_arguments"
    methods = [call.method for call in standin.state.standin.calls]
    assert methods.count("files.completeUploadExternal") == 3  # recorded like the others


async def test_the_webhook_receiver_records_answers_and_fails_on_demand(
    app: tuple[httpx.AsyncClient, Any],
) -> None:
    c, standin = app
    trigger = {"event_action": "trigger", "dedup_key": "J-1", "payload": {
        "summary": "s", "source": "east", "severity": "critical"}}
    ok = await c.post("/_standin/webhook", json=trigger)
    assert ok.status_code == 202 and ok.json()["dedup_key"] == "J-1"
    wrong = await c.post("/_standin/webhook", json={"event_action": "trigger",
                                                    "payload": {"summary": "s"}})
    assert wrong.status_code == 400
    assert "payload.source is required" in wrong.json()["errors"]
    assert (await c.post("/_standin/webhook/fail", json={"count": 1})).json() == {"failing": 1}
    assert (await c.post("/_standin/webhook", json=trigger)).status_code == 500
    resolve = {"event_action": "resolve", "dedup_key": "J-1"}
    assert (await c.post("/_standin/webhook", json=resolve)).status_code == 202
    calls = (await c.get("/_standin/webhook")).json()["calls"]
    assert [x["status"] for x in calls] == [202, 400, 500, 202]
    assert standin.state.webhook.bodies() == [trigger, resolve]
