"""Socket Mode for real: the bot's Bolt Socket Mode client (slack_sdk, aiohttp) against the
stand-in's Socket Mode server: `apps.connections.open`, the WebSocket, `slash_commands`
and `interactive` envelopes acked with their replies, reconnects, and `ppsbot bot` itself."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
import yaml

from jobs.rules.model import State, Step
from sim.slack.standin import create_standin_app
from tests.fakes import (
    PPSBOT,
    blob,
    bound_socket,
    child_env,
    cluster_entry,
    free_port,
    inventory_data,
    serve,
    url_of,
)
from tests.slack.slack_stack import APP_TOKEN, StackFactory

REQ, A1, A2 = "U_REQUESTER", "U_APPROVER1", "U_APPROVER2"


async def connected(st: Any, count: int = 1) -> Any:
    """Wait until the stand-in has seen `count` WebSocket connections, the newest open."""
    async def seen() -> Any:
        conns = st.socket.connections
        return conns[-1] if len(conns) >= count and conns[-1].open else None
    return await st.wait_for(seen, what=f"socket connection #{count}")


async def post(http: Any, url: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = await http.post(url, json=body)
    assert resp.status_code == 200, resp.text
    out: dict[str, Any] = resp.json()
    return out


async def command(st: Any, text: str, user: str = REQ, **extra: Any) -> dict[str, Any]:
    """`/pps <text>` through the stand-in's control API (the socket once connected)."""
    return await post(st.http, f"{st.standin_url}/_standin/command",
                      {"user_id": user, "channel_id": "C_CMD", "text": text, **extra})


async def click(st: Any, user: str, msg: Any, action_id: str) -> dict[str, Any]:
    """A click on a button of `msg` through the stand-in's control API."""
    return await post(st.http, f"{st.standin_url}/_standin/click",
                      {"user_id": user, "channel_id": msg.channel, "message_ts": msg.ts,
                       "action_id": action_id})


def reply_text(body: dict[str, Any]) -> str:
    return str(body.get("text", "")) + blob(body.get("blocks", []))


async def test_slack_socket_mode_connects_and_answers_commands(stack: StackFactory) -> None:
    st = await stack(socket=True)
    assert st.runtime.socket_mode
    conn = await connected(st)
    opens = st.store.calls_of("apps.connections.open")
    assert opens and all(c.ok and c.token_type == "xapp" for c in opens)

    out = await command(st, "help")
    assert out["transport"] == "socket" and out["status"] == 200, out
    assert out["body"]["response_type"] == "ephemeral"
    assert "/pps upgrade" in reply_text(out["body"])

    out = await command(st, "upgrade cluster-east --dry-run")
    assert out["transport"] == "socket" and out["status"] == 200, out
    assert out["body"]["response_type"] == "ephemeral"
    m = re.search(r"`(J-[A-Za-z0-9-]{1,22})`", reply_text(out["body"]))
    assert m, out
    await st.ephemeral_containing(REQ, m.group(1))  # the ack payload is the user's reply
    assert (await st.job(m.group(1))).dry_run

    out = await command(st, "upgrade")
    assert out["status"] == 200 and "Usage" in reply_text(out["body"]), out
    assert out["body"]["response_type"] == "ephemeral"

    acked = [d for d in st.socket.deliveries if d.type == "slash_commands"]
    assert [d.outcome for d in acked] == ["acked"] * 3
    assert all(d.accepts_response_payload and d.connection == conn.id for d in acked)
    assert acked[0].payload["command"] == "/pps" and acked[0].payload["user_id"] == REQ
    assert not st.ephemerals("U_APPROVER1"), "replies are shown to the caller only"


async def test_slack_socket_mode_unacked_envelope_is_a_failure(stack: StackFactory) -> None:
    st = await stack(socket=True)
    await connected(st)
    st.socket.ack_timeout = 0.5  # Bolt does not ack a command it has no listener for
    out = await command(st, "help", command="/other")
    assert out == {"status": 408, "body": {"error": "no_ack"}, "transport": "socket"}
    assert st.socket.deliveries[-1].outcome == "no_ack"
    st.socket.ack_timeout = 10.0
    assert (await command(st, "help"))["status"] == 200, "the connection still serves"
    # HTTP on request: this bot serves no request URL in Socket Mode
    assert (await command(st, "help", transport="http"))["status"] == 404


async def test_slack_standin_socket_transport_without_a_client() -> None:
    app = create_standin_app("http://127.0.0.1:9/slack/events", "s")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://slack") as c:
        body = {"user_id": REQ, "channel_id": "C_CMD", "text": "help"}
        out = (await c.post("/_standin/command", json={**body, "transport": "socket"})).json()
        assert out == {"status": 503, "body": {"error": "no_connection"}, "transport": "socket"}
        bad = await c.post("/_standin/command", json={**body, "transport": "carrier-pigeon"})
        assert bad.status_code == 400
        state = (await c.get("/_standin/socket")).json()
        assert state["connected"] is False and state["port"] is None
        assert [d["outcome"] for d in state["deliveries"]] == ["no_connection"]
        assert (await c.post("/_standin/socket/drop", json={"mode": "x"})).status_code == 400


async def test_slack_socket_mode_web_api_checks_tokens(stack: StackFactory) -> None:
    st = await stack(socket=True)
    await connected(st)
    api = f"{st.standin_url}/api/apps.connections.open"

    async def open_with(token: str | None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        out: dict[str, Any] = (await st.http.post(api, headers=headers)).json()
        return out

    assert await open_with("xoxb-test-token") == {"ok": False, "error": "not_allowed_token_type"}
    assert await open_with("xapp-1-someone-else") == {"ok": False, "error": "invalid_auth"}
    assert await open_with(None) == {"ok": False, "error": "not_authed"}
    good = await open_with(APP_TOKEN)
    assert good["ok"] and re.fullmatch(r"ws://127\.0\.0\.1:\d+/link/\?ticket=\w+&app_id=\w+",
                                       good["url"]), good
    post_with_app_token = await st.http.post(
        f"{st.standin_url}/api/chat.postMessage", json={"channel": "C_X", "text": "x"},
        headers={"Authorization": f"Bearer {APP_TOKEN}"})
    assert post_with_app_token.json() == {"ok": False, "error": "not_allowed_token_type"}


async def test_slack_socket_mode_whole_upgrade_with_two_approvers(stack: StackFactory) -> None:
    st = await stack(socket=True, worker=True)
    await connected(st)
    out = await command(st, "upgrade cluster-east")
    assert out["transport"] == "socket" and out["status"] == 200, out
    m = re.search(r"`(J-[A-Za-z0-9-]{1,22})`", reply_text(out["body"]))
    assert m, out
    jid = m.group(1)

    disable = await st.open_gate(jid, Step.GATE_DISABLE)
    refused = await click(st, REQ, disable, "pps_approve")  # the requester, two-person rule
    assert refused == {"status": 200, "transport": "socket"}
    await st.ephemeral_containing(REQ, "Two-person rule")
    assert (await st.job(jid)).state is State.AWAITING_APPROVAL
    assert (await click(st, A1, disable, "pps_approve"))["status"] == 200
    enable = await st.open_gate(jid, Step.GATE_ENABLE)
    assert (await click(st, A2, enable, "pps_approve"))["status"] == 200
    await st.until_state(jid, State.SUCCEEDED)
    card = await st.card_in(jid, "succeeded", summary="upgraded to")
    assert card.channel == "C_EAST"
    gates = [m for m in st.thread(card) if "Approval requested:" in m.text + blob(m.blocks)]
    assert [who for m in gates for who in (A1, A2, REQ)
            if f"*Approved* by <@{who}>" in blob(m.blocks)] == [A1, A2]
    clicks = [d for d in st.socket.deliveries if d.type == "interactive"]
    assert len(clicks) == 3 and all(d.outcome == "acked" for d in clicks)
    assert not any(d.accepts_response_payload for d in clicks)
    assert clicks[0].payload["type"] == "block_actions"
    assert st.fakes["cluster-east"].login_permission is True


@pytest.mark.parametrize("mode", ["close", "disconnect"])
async def test_slack_socket_mode_reconnects_after_a_drop(stack: StackFactory, mode: str) -> None:
    st = await stack(socket=True)
    first = await connected(st)
    assert (await command(st, "help"))["status"] == 200
    dropped = await post(st.http, f"{st.standin_url}/_standin/socket/drop", {"mode": mode})
    assert dropped == ({"closed": 1} if mode == "close" else {"asked": 1})

    async def moved() -> Any:
        conns = st.socket.open_connections()
        return conns if conns and first not in conns and not first.open else None
    (second,) = await st.wait_for(moved, what="a new connection replacing the dropped one")
    assert second.id > first.id
    assert len(st.store.calls_of("apps.connections.open")) >= 2, "a fresh URL for each"
    out = await command(st, "help")
    assert out["status"] == 200 and out["transport"] == "socket", out
    assert st.socket.deliveries[-1].connection == second.id


# -- the real process ----------------------------------------------------------------------

@pytest.fixture
async def standin() -> AsyncIterator[tuple[str, Any]]:
    """The stand-in alone under uvicorn (`ppsbot bot` connects to it): its URL and app."""
    app = create_standin_app("http://127.0.0.1:9/slack/events", "unused-in-socket-mode",
                             app_token=APP_TOKEN, ack_timeout=10.0)
    sock = bound_socket()
    server, task = await serve(app, sock)
    yield url_of(sock), app
    server.should_exit = True
    await asyncio.wait_for(task, 10)


async def _until(what: str, check: Any, seconds: float = 30.0) -> Any:
    deadline = time.monotonic() + seconds
    while not (got := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)
    return got


def _events(log: Path) -> list[dict[str, Any]]:
    out = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def _bot_env(url: str, redis_url: str, prefix: str, tmp_path: Path, port: int,
             app_token: str) -> dict[str, str]:
    """The environment of a `ppsbot bot` in Socket Mode against the stand-in at `url`."""
    inventory = tmp_path / "inventory.yml"
    lab = cluster_entry("standalone", {"lab-1": "https://lab-1.invalid"})
    data = inventory_data(tmp_path, {"lab": lab}, versions=["9.1R18"])
    inventory.write_text(yaml.safe_dump(data))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PPS_"))}
    env.update({
        "SLACK_BOT_TOKEN": "xoxb-blackbox-token", "SLACK_APP_TOKEN": app_token,
        "SLACK_API_URL": f"{url}/api/", "REDIS_URL": redis_url, "PPS_REDIS_PREFIX": prefix,
        "PPS_INVENTORY": str(inventory), "PPS_CHANNEL": "C_PPS", "HOST": "127.0.0.1",
        "PORT": str(port), "LOG_FORMAT": "json", "LOG_LEVEL": "INFO",
    })
    return child_env(env)


async def test_slack_socket_mode_refused_app_token_stops_start_up(
    standin: tuple[str, Any], redis_url: str, prefix: str, tmp_path: Path,
) -> None:
    """A wrong app token ends `ppsbot bot` at once with a clear message (Socket Mode alone
    would retry it every 10 s forever and never serve /healthz)."""
    url, app = standin
    port = free_port()
    wrong = "xapp-1-A0PPSBOT-0000-not-the-right-one"
    env = _bot_env(url, redis_url, prefix, tmp_path, port, wrong)
    proc = await asyncio.create_subprocess_exec(
        str(PPSBOT), "bot", env=env, cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    text = (out + err).decode(errors="replace")
    assert proc.returncode == 2, text
    assert "SLACK_APP_TOKEN was refused by Slack (invalid_auth)" in text
    assert wrong not in text and "Traceback" not in text
    assert not app.state.socket.connected


async def test_slack_socket_mode_ppsbot_bot_process(
    standin: tuple[str, Any], redis: aioredis.Redis, redis_url: str, prefix: str,
    tmp_path: Path,
) -> None:
    url, app = standin
    port = free_port()
    env = _bot_env(url, redis_url, prefix, tmp_path, port, APP_TOKEN)
    log = tmp_path / "bot.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            str(PPSBOT), "bot", env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    try:
        def started() -> Any:
            assert proc.returncode is None, log.read_text()
            return next((e for e in _events(log) if e.get("event") == "bot_started"), None)
        assert (await _until("bot_started", started))["mode"] == "socket"
        hub = app.state.socket
        assert hub.connected and hub.connections[0].open
        opens = app.state.standin.calls_of("apps.connections.open")
        # one to check the token before start-up, one by the Socket Mode client
        assert [(c.token_type, c.ok) for c in opens] == [("xapp", True)] * 2
        async with httpx.AsyncClient(timeout=15) as http:
            resp = await http.post(f"{url}/_standin/command",
                                   json={"user_id": REQ, "channel_id": "C_CMD", "text": "help"})
            out = resp.json()
            assert out["transport"] == "socket" and out["status"] == 200, out
            assert "/pps upgrade" in reply_text(out["body"])
            health = await http.get(f"http://127.0.0.1:{port}/healthz")
            assert health.status_code == 200
            assert (await http.post(f"http://127.0.0.1:{port}/slack/events")).status_code == 404
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
    # uvicorn shuts down cleanly on SIGTERM, then re-raises the signal to exit with it.
    text = log.read_text()
    assert proc.returncode in (0, -signal.SIGTERM), text
    assert "Application shutdown complete" in text
    await _until("the socket to close", lambda: not app.state.socket.connected, 5)
    assert APP_TOKEN not in text and "xoxb-blackbox-token" not in text
