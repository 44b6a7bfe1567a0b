"""The stand-in's App Home side: `views.publish` checked as Slack would and recorded per
user, the signed `app_home_opened` event it sends, and message links back to the page."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sim.slack.channel_page import routes as page_routes
from sim.slack.signing import signature
from sim.slack.standin import create_standin_app

AUTH = {"Authorization": "Bearer xoxb-test"}
SECTION = {"type": "section", "text": {"type": "mrkdwn", "text": "fleet"}}
HOME = {"type": "home", "blocks": [SECTION]}


async def publish(c: httpx.AsyncClient, **args: Any) -> dict[str, Any]:
    r = await c.post("/api/views.publish", json=args, headers=AUTH)
    body: dict[str, Any] = r.json()
    return body


@pytest.fixture
async def standin() -> Any:
    app = create_standin_app("http://bot/slack/events", "s",
                             extra_routes=page_routes(channel="C0PPSDEMO"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://slack") as c:
        yield c, app


async def test_views_publish_records_each_users_home(standin: Any) -> None:
    c, app = standin
    store = app.state.standin
    first = await publish(c, user_id="U_APPROVER1", view=HOME)
    assert first["ok"] and first["view"]["type"] == "home" and first["view"]["blocks"] == [SECTION]
    again = await publish(c, user_id="U_APPROVER1", view={**HOME, "blocks": [SECTION] * 2})
    assert again["ok"] and store.homes["U_APPROVER1"].publishes == 2
    assert len(store.homes["U_APPROVER1"].view["blocks"]) == 2
    # form-encoded, view as a JSON string, like other clients send it
    f = await c.post("/api/views.publish", headers=AUTH,
                     data={"user_id": "U_STRANGER", "view": json.dumps(HOME)})
    assert f.json()["ok"]
    state = (await c.get("/_standin/state", params={"viewer": "U_APPROVER1"})).json()
    assert state["home"]["view"]["blocks"] == [SECTION] * 2 and state["home"]["publishes"] == 2
    assert (await c.get("/_standin/state", params={"viewer": "U_REQUESTER"})).json()["home"] is None
    got = await c.get("/_standin/home", params={"user": "U_STRANGER"})
    assert got.json()["view"] == HOME
    assert (await c.get("/_standin/home", params={"user": "U_REQUESTER"})).status_code == 404
    # auth.test names the stand-in itself as the workspace, so message links come back here
    auth = (await c.post("/api/auth.test", headers=AUTH)).json()
    assert auth["url"] == "http://slack/"


@pytest.mark.parametrize(("view", "error"), [
    ({**HOME, "blocks": [SECTION] * 101}, "invalid_arguments"),
    ({**HOME, "type": "modal"}, "invalid_arguments"),
    ({**HOME, "blocks": []}, "invalid_arguments"),
    ({**HOME, "title": {"type": "plain_text", "text": "x"}}, "invalid_arguments"),
    ({**HOME, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]},
     "invalid_arguments"),
    ({**HOME, "blocks": [{"type": "section", "txt": "typo"}]}, "invalid_arguments"),
    ("not json", "invalid_arguments"),
    (None, "invalid_arguments"),
])
async def test_views_publish_refuses_what_slack_refuses(standin: Any, view: Any,
                                                        error: str) -> None:
    c, app = standin
    args = {"user_id": "U_APPROVER1"} | ({} if view is None else {"view": view})
    body = await publish(c, **args)
    assert (body["ok"], body["error"]) == (False, error)
    assert app.state.standin.homes == {}


async def test_views_publish_needs_a_known_user(standin: Any) -> None:
    c, _ = standin
    assert (await publish(c, user_id="U_NOBODY", view=HOME))["error"] == "user_not_found"


async def test_home_opened_sends_a_signed_events_api_callback() -> None:
    seen: list[dict[str, Any]] = []

    async def bot(request: Request) -> JSONResponse:
        body = await request.body()
        ts = request.headers["X-Slack-Request-Timestamp"]
        assert request.headers["X-Slack-Signature"] == signature("s", ts, body)
        assert request.headers["Content-Type"] == "application/json"
        seen.append(json.loads(body))
        return JSONResponse({})

    standin = create_standin_app("http://bot/slack/events", "s")
    control = standin.state.control
    control.client = httpx.AsyncClient(transport=httpx.ASGITransport(
        app=Starlette(routes=[Route("/slack/events", bot, methods=["POST"])])))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=standin),
                                 base_url="http://slack") as c:
        r = await c.post("/_standin/home_opened", json={"user_id": "U_APPROVER2"})
        assert r.json() == {"status": 200}
        bad = await c.post("/_standin/home_opened", json={"user_id": "U_APPROVER2",
                                                          "tab": "files"})
        assert bad.status_code == 400
    await control.client.aclose()
    (callback,) = seen
    assert callback["type"] == "event_callback" and callback["event_id"].startswith("Ev")
    event = callback["event"]
    assert (event["type"], event["user"], event["tab"]) == ("app_home_opened", "U_APPROVER2",
                                                           "home")
    assert callback["authorizations"][0]["user_id"] == "U_PPSBOT"


async def test_a_message_link_opens_the_page_on_that_message(standin: Any) -> None:
    c, _ = standin
    r = await c.get("/archives/C0PPSDEMO/p1800000000000100", follow_redirects=False)
    assert r.status_code == 302
    assert r.headers["location"] == "/?channel=C0PPSDEMO&ts=1800000000.000100"
    assert (await c.get("/archives/C0PPSDEMO/pxyz")).status_code == 404
    assert (await c.get("/archives/c%3Cscript/p1800000000000100")).status_code == 404
