"""The bot's HTTP surface: signature checks, ssl_check, /healthz, /metrics, auth.test once."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
from redis.asyncio import Redis

from bot.app import create_web_app
from sim.slack.signing import signature
from tests.slack.slack_stack import StackFactory


@pytest.mark.parametrize("flag", ["unsigned", "tamper", "stale", "future"])
async def test_slack_bad_signature_is_401_and_creates_no_job(
    stack: StackFactory, flag: str
) -> None:
    st = await stack()
    resp = await st.command("upgrade lab", **{flag: True})
    assert resp.status_code == 401
    assert await st.job_ids() == []
    assert "chat.postMessage" not in {c.method for c in st.store.calls}


async def test_slack_signed_command_is_accepted(stack: StackFactory) -> None:
    st = await stack()
    resp = await st.command("help")
    assert resp.status_code == 200
    assert resp.json()["response_type"] == "ephemeral"


async def test_slack_wrong_secret_is_401(stack: StackFactory) -> None:
    st = await stack()
    body = b"command=%2Fpps&text=upgrade+lab&user_id=U_REQUESTER&channel_id=C1"
    headers = st.signer.headers(body)
    headers["X-Slack-Signature"] = signature("another-secret", headers[
        "X-Slack-Request-Timestamp"], body)
    resp = await st.http.post(st.signer.url, content=body, headers=headers)
    assert resp.status_code == 401
    assert await st.job_ids() == []


async def test_slack_ssl_check_is_200_without_signature(stack: StackFactory) -> None:
    st = await stack()
    body = urlencode({"ssl_check": "1", "token": "x"}).encode()
    resp = await st.http.post(st.signer.url, content=body,
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status_code == 200
    assert resp.content == b""


async def test_slack_healthz_and_metrics(stack: StackFactory) -> None:
    st = await stack()
    await st.command("help")
    health = await st.http.get(st.bot_url + "/healthz")
    assert health.status_code == 200 and health.json()["ok"] is True
    m = await st.http.get(st.bot_url + "/metrics")
    assert m.status_code == 200
    assert 'pps_slack_commands_total{outcome="helptext",verb="help"}' in m.text
    assert "pps_slack_command_ack_seconds_bucket" in m.text


async def test_slack_healthz_is_503_when_redis_is_down() -> None:
    import httpx

    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    app = create_web_app(None, dead)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bot") as c:
        resp = await c.get("/healthz")
    await dead.aclose()
    assert resp.status_code == 503
    assert resp.json()["ok"] is False


async def test_slack_auth_test_is_called_once_at_start_not_on_acks(stack: StackFactory) -> None:
    st = await stack()
    # start-up: one auth.test, and the background refresh of the approver group
    await st.wait_for(lambda: _has(st, "usergroups.users.list"), what="group refresh")
    assert [c.method for c in st.store.calls].count("auth.test") == 1
    before = len(st.store.calls)
    for text in ("list", "upgrade lab", "status", "history", "clusters", "bogus"):
        assert (await st.command(text)).status_code == 200
    # the ack path makes no Web API call at all (the card comes later, from the notifier)
    notifier = {"chat.postMessage", "chat.update"}
    assert [c.method for c in st.store.calls[before:] if c.method not in notifier] == []


async def _has(st: Any, method: str) -> bool:
    return any(c.method == method for c in st.store.calls)
