"""The app's set-up surface: the manifest, the start-up checks, HTTP vs Socket Mode wiring."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
import yaml

from bot.server import _config_problems, build
from jobs.config.settings import Settings
from tests.fakes import ROOT, cluster_entry, make_inventory


def test_slack_manifest_declares_the_contract() -> None:
    text = (ROOT / "slack-manifest.yml").read_text()
    m = yaml.safe_load(text)
    (cmd,) = m["features"]["slash_commands"]
    assert cmd["command"] == "/pps" and cmd["description"]
    assert "upgrade <cluster>" in cmd["usage_hint"]
    assert set(m["oauth_config"]["scopes"]["bot"]) == {
        "commands", "chat:write", "chat:write.public", "usergroups:read", "users:read",
        "files:write"}
    assert m["settings"]["interactivity"]["is_enabled"] is True
    assert m["features"]["app_home"]["home_tab_enabled"] is True
    assert m["settings"]["event_subscriptions"]["bot_events"] == ["app_home_opened"]
    assert m["settings"]["socket_mode_enabled"] is True
    assert m["display_information"]["name"] and m["features"]["bot_user"]["display_name"]
    assert "request_url" in text and "/slack/events" in text  # how to switch to HTTP


def _settings(**kw: Any) -> Settings:
    return Settings(_env_file=None, **kw)


def test_slack_startup_checks_name_missing_secrets() -> None:
    assert _config_problems(_settings()) == [
        "SLACK_BOT_TOKEN is not set (the bot's xoxb- token)",
        "SLACK_SIGNING_SECRET is not set (needed in HTTP mode)",
    ]
    socket_mode = _settings(SLACK_BOT_TOKEN="xoxb-1", SLACK_APP_TOKEN="xapp-1")
    assert _config_problems(socket_mode) == []
    http = _settings(SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="s")
    assert _config_problems(http) == []


async def test_slack_socket_mode_serves_health_but_no_request_url(
    redis: aioredis.Redis, tmp_path: Path
) -> None:
    lab = cluster_entry("standalone", {"lab-1": "https://lab-1.invalid"})
    inv = make_inventory(tmp_path, {"lab": lab}, versions=["9.1R18"])
    paths = {}
    for mode, extra in (("socket", {"SLACK_APP_TOKEN": "xapp-1"}), ("http", {})):
        rt = build(_settings(SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="s", **extra),
                   redis, inv, notifier=False)
        assert rt.socket_mode is (mode == "socket")
        paths[mode] = {getattr(r, "path", "") for r in rt.web.routes}
    assert paths["socket"] == {"/healthz", "/metrics"}
    assert paths["http"] == {"/healthz", "/metrics", "/slack/events"}


async def test_slack_authorize_never_waits_for_slack() -> None:
    import asyncio

    from slack_sdk.web.async_client import AsyncWebClient

    from bot.app import StartupAuth

    auth = StartupAuth(AsyncWebClient(token="xoxb-1", base_url="http://127.0.0.1:1/api/"))
    authorize = auth.authorize_fn()
    result = await asyncio.wait_for(authorize(enterprise_id=None, team_id="T1"), 0.5)
    assert result.bot_token == "xoxb-1" and result.team_id == "T1"
    assert auth._retry is not None  # auth.test is retried in the background
    await auth._retry  # fails quietly (Slack unreachable), never raises into a request
