"""The /slack/events guard in-process: whatever Bolt does with a request, Slack never sees a
5xx (a listener that raises, a timestamp that is not a number, a body Bolt cannot parse)."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any, cast
from urllib.parse import urlencode

import httpx
import redis.asyncio as aioredis
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult

from bot.app import SlackBot, create_web_app
from tests.acceptance.acceptance_stack import sign

SECRET = "guard-secret"


def _app() -> AsyncApp:
    async def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, bot_token="xoxb-x")

    app = AsyncApp(signing_secret=SECRET, authorize=authorize, process_before_response=True)

    async def boom(ack: Any) -> None:
        raise RuntimeError("a bug in a listener")

    app.command("/pps")(boom)
    return app


async def test_acceptance_bolt_errors_never_reach_slack_as_5xx() -> None:
    bot = cast(SlackBot, SimpleNamespace(app=_app()))
    web = create_web_app(bot, cast(aioredis.Redis, None))
    body = urlencode({"command": "/pps", "text": "help", "user_id": "U1", "team_id": "T1",
                      "channel_id": "C1"}).encode()
    ts = str(int(time.time()))
    signed = {"Content-Type": "application/x-www-form-urlencoded",
              "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sign(SECRET, ts, body)}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web),
                                 base_url="http://bot") as client:
        r = await client.post("/slack/events", content=body, headers=signed)
        assert r.status_code == 400, r.text
        r = await client.post("/slack/events", content=body,
                              headers={**signed, "X-Slack-Request-Timestamp": "x1"})
        assert r.status_code == 401
        r = await client.post("/slack/events", content=b"payload=%7B", headers=signed)
        assert r.status_code < 500
