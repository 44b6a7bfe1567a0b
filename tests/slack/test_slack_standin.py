"""The Slack stand-in itself: the signer against Slack's test vector, Web API shapes, Block
Kit checks, ts order, rate limits, and the control API the demo page uses."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from sim.slack.signing import Signer, signature, slash_command_body
from sim.slack.standin import create_standin_app
from sim.slack.store import RateLimit

# Slack's documented example ("Verifying requests from Slack").
VECTOR_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
VECTOR_TS = "1531420618"
VECTOR_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id="
    b"G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook"
    b"-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F3977"
    b"00885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d1"
    b"0d2c447fce8b6703c"
)
VECTOR_SIG = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
AUTH = {"Authorization": "Bearer xoxb-test"}
SECTION = {"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}


def test_slack_signer_matches_slacks_test_vector() -> None:
    assert signature(VECTOR_SECRET, VECTOR_TS, VECTOR_BODY) == VECTOR_SIG
    h = Signer("http://x", VECTOR_SECRET).headers(VECTOR_BODY, now=float(VECTOR_TS))
    assert h["X-Slack-Signature"] == VECTOR_SIG
    assert h["X-Slack-Request-Timestamp"] == VECTOR_TS


def test_slack_signer_bad_variants() -> None:
    s = Signer("http://x", "secret")
    now = 1_800_000_000.0
    good = s.headers(b"a=1", now=now)
    assert s.headers(b"a=1", now=now, tamper=True)["X-Slack-Signature"] != good[
        "X-Slack-Signature"]
    assert int(s.headers(b"a=1", now=now, stale=True)["X-Slack-Request-Timestamp"]) < now - 300
    assert int(s.headers(b"a=1", now=now, future=True)["X-Slack-Request-Timestamp"]) > now + 300
    assert "X-Slack-Signature" not in s.headers(b"a=1", unsigned=True)


@pytest.fixture
async def api() -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    app = create_standin_app("http://127.0.0.1:9/slack/events", "s",
                             rate_limit=RateLimit(limit=2, window=60.0,
                                                  methods=frozenset({"chat.update"})))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://slack") as c:
        yield c, app.state.standin


async def call(c: httpx.AsyncClient, method: str, **args: Any) -> dict[str, Any]:
    r = await c.post(f"/api/{method}", json=args, headers=AUTH)
    body: dict[str, Any] = r.json()
    body["_status"] = r.status_code
    return body


async def test_slack_standin_web_api_shapes(api: Any) -> None:
    c, store = api
    assert (await call(c, "auth.test"))["user_id"] == "U_PPSBOT"
    r = await c.post("/api/auth.test")
    assert r.json() == {"ok": False, "error": "not_authed"}
    p = await call(c, "chat.postMessage", channel="C1", text="a", blocks=[SECTION],
                   metadata={"event_type": "pps_job", "event_payload": {"job_id": "J-1"}})
    assert p["ok"] and p["channel"] == "C1" and p["message"]["metadata"]["event_type"]
    reply = await call(c, "chat.postMessage", channel="C1", text="r", thread_ts=p["ts"],
                       reply_broadcast=True)
    assert reply["message"]["thread_ts"] == p["ts"]
    assert (await call(c, "chat.postMessage", channel="C1", text="x",
                       thread_ts="1.000000"))["error"] == "thread_not_found"
    u = await call(c, "chat.update", channel="C1", ts=p["ts"], text="only text")
    assert u["ok"]
    msg = store.find("C1", p["ts"])
    assert msg.blocks == [] and msg.metadata is None and msg.edited  # not resent: dropped
    assert (await call(c, "chat.update", channel="C1", ts="9.9",
                       text="x"))["error"] == "message_not_found"
    e = await call(c, "chat.postEphemeral", channel="C1", user="U_STRANGER", text="psst")
    assert e["ok"] and store.find("C1", e["message_ts"]).ephemeral_for == "U_STRANGER"
    g = await c.get("/api/usergroups.users.list", params={"usergroup": "S_APPROVERS"},
                    headers=AUTH)
    assert g.json() == {"ok": True, "users": ["U_APPROVER1", "U_APPROVER2"]}
    i = await c.get("/api/users.info", params={"user": "U_REQUESTER"}, headers=AUTH)
    assert i.json()["user"]["name"] == "riley.requester"
    assert (await call(c, "users.info", user="U_NOBODY"))["error"] == "user_not_found"
    # form-encoded calls (blocks as a JSON string) work too
    f = await c.post("/api/chat.postMessage", headers=AUTH,
                     data={"channel": "C2", "text": "f", "blocks": json.dumps([SECTION])})
    assert f.json()["ok"]


@pytest.mark.parametrize(
    ("blocks", "error"),
    [
        ([SECTION] * 51, "invalid_blocks"),
        ([{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}], "invalid_blocks"),
        ([{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}],
         "invalid_blocks"),
        ([{"type": "actions", "elements": [{"type": "button", "action_id": "a",
                                            "text": {"type": "plain_text", "text": "x" * 76}}]}],
         "invalid_blocks"),
        ([{"type": "section", "txt": {"type": "mrkdwn", "text": "typo"}}], "invalid_blocks"),
        ([{"type": "no_such_block"}], "invalid_blocks"),
        ("[not json", "invalid_blocks_format"),
    ],
)
async def test_slack_standin_refuses_invalid_blocks(api: Any, blocks: Any, error: str) -> None:
    c, store = api
    r = await call(c, "chat.postMessage", channel="C1", text="t", blocks=blocks)
    assert (r["ok"], r["error"]) == (False, error)
    assert store.messages("C1") == []


async def test_slack_standin_ts_unique_and_increasing(api: Any) -> None:
    c, _ = api
    results = await asyncio.gather(*(call(c, "chat.postMessage", channel="C1", text=str(i))
                                     for i in range(50)))
    ts = [r["ts"] for r in results]
    assert len(set(ts)) == 50
    assert sorted(ts, key=float) == sorted(ts)


async def test_slack_standin_rate_limit_and_early_calls(api: Any) -> None:
    c, store = api
    p = await call(c, "chat.postMessage", channel="C1", text="a")
    for _ in range(2):
        assert (await call(c, "chat.update", channel="C1", ts=p["ts"], text="b"))["ok"]
    r = await c.post("/api/chat.update", json={"channel": "C1", "ts": p["ts"], "text": "c"},
                     headers=AUTH)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert r.json() == {"ok": False, "error": "ratelimited"}
    await call(c, "chat.update", channel="C1", ts=p["ts"], text="d")  # did not wait
    assert [x.early for x in store.calls_of("chat.update")] == [False, False, False, True]


async def test_slack_standin_control_api_with_a_fake_bot() -> None:
    """command / click / response / state / calls against a tiny signed-request checker."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    seen: list[dict[str, Any]] = []

    async def bot(request: Request) -> JSONResponse:
        body = await request.body()
        ts = request.headers["X-Slack-Request-Timestamp"]
        assert request.headers["X-Slack-Signature"] == signature("s", ts, body)
        form = await request.form()
        seen.append(dict(form))
        if "payload" in form:
            return JSONResponse({})
        return JSONResponse({"response_type": "ephemeral", "text": "ack " + str(form["text"])})

    bot_app = Starlette(routes=[Route("/slack/events", bot, methods=["POST"])])
    standin = create_standin_app("http://bot/slack/events", "s")
    control = standin.state.control
    control.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=bot_app))
    store = standin.state.standin
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=standin),
                                 base_url="http://slack") as c:
        v0 = (await c.get("/_standin/state")).json()["version"]
        r = await c.post("/_standin/command",
                         json={"user_id": "U_REQUESTER", "channel_id": "C1", "text": "help"})
        assert r.json() == {"status": 200,
                            "body": {"response_type": "ephemeral", "text": "ack help"}}
        assert seen[0]["command"] == "/pps" and seen[0]["user_id"] == "U_REQUESTER"
        mine = (await c.get("/_standin/state", params={"viewer": "U_REQUESTER"})).json()
        other = (await c.get("/_standin/state", params={"viewer": "U_STRANGER"})).json()
        assert mine["version"] > v0
        assert [m["text"] for m in mine["channels"]["C1"]] == ["ack help"]
        assert mine["channels"]["C1"][0]["ephemeral_for"] == "U_REQUESTER"
        assert other["channels"]["C1"] == []
        assert {u["id"] for u in mine["users"]} == {"U_REQUESTER", "U_APPROVER1", "U_APPROVER2",
                                                     "U_STRANGER"}
        # response_url: posts are recorded, at most 5 uses
        url = seen[0]["response_url"].replace("http://slack", "")
        for i in range(5):
            ok = await c.post(url, json={"text": f"later {i}", "response_type": "in_channel"})
            assert ok.status_code == 200
        assert (await c.post(url, json={"text": "6th"})).status_code == 404
        # a click on a bot message with a button
        btn = {"type": "actions", "block_id": "gate:G1", "elements": [
            {"type": "button", "action_id": "pps_approve", "value": "v1",
             "text": {"type": "plain_text", "text": "Approve"}}]}
        p = await call(c, "chat.postMessage", channel="C1", text="ask", blocks=[btn])
        r = await c.post("/_standin/click", json={
            "user_id": "U_APPROVER1", "channel_id": "C1", "message_ts": p["ts"],
            "action_id": "pps_approve", "value": "v1"})
        assert r.json() == {"status": 200}
        payload = json.loads(seen[-1]["payload"])
        assert payload["type"] == "block_actions" and payload["user"]["id"] == "U_APPROVER1"
        assert payload["actions"][0]["value"] == "v1"
        assert payload["message"]["ts"] == p["ts"]
        missing = await c.post("/_standin/click", json={
            "user_id": "U_APPROVER1", "channel_id": "C1", "message_ts": "1.1",
            "action_id": "pps_approve", "value": "v1"})
        assert missing.status_code == 404
        calls = (await c.get("/_standin/calls")).json()
        assert [x["method"] for x in calls] == ["chat.postMessage"]
        assert (await c.get("/_standin/calls", params={"since": 1})).json() == []
        # long poll: returns on the next change
        version = (await c.get("/_standin/state")).json()["version"]
        waiter = asyncio.create_task(c.get("/_standin/state", params={"since": version}))
        await asyncio.sleep(0.1)
        assert not waiter.done()
        store.touch()
        assert (await asyncio.wait_for(waiter, 5)).json()["version"] == version + 1
        await control.client.aclose()


def test_slack_command_body_is_a_slack_form() -> None:
    body = slash_command_body(user_id="U1", channel_id="C1", text="upgrade a b",
                              response_url="http://r", trigger_id="1.2.3")
    assert body.startswith(b"token=") and b"&command=%2Fpps&text=upgrade+a+b&" in body
