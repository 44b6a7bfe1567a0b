"""Send requests to a Slack app exactly as Slack does: signed form bodies.

Slash commands are `application/x-www-form-urlencoded` forms; button clicks are one form
field `payload=<json>`; Events API callbacks (`app_home_opened`) are JSON. Every request
carries `X-Slack-Request-Timestamp` and
`X-Slack-Signature = "v0=" + hex(HMAC_SHA256(secret, "v0:" + ts + ":" + body))`.
The `tamper`, `stale`, `future` and `unsigned` options produce the bad requests a
verifying app must refuse. Used by the stand-in, the tests and the benchmark.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

TEAM_ID = "T0STANDIN"
APP_ID = "A0PPSBOT"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
# Slack rejects requests more than 300 s away from now; the "bad" options go well beyond.
SKEW_SECONDS = 600


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The `X-Slack-Signature` value for a body sent at `timestamp`."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def new_trigger_id() -> str:
    """A trigger id shaped like Slack's (`<digits>.<digits>.<hex>`)."""
    return f"{secrets.randbelow(10**12)}.{secrets.randbelow(10**11)}.{secrets.token_hex(16)}"


def slash_command_body(
    *,
    user_id: str,
    channel_id: str,
    text: str,
    response_url: str,
    command: str = "/pps",
    trigger_id: str | None = None,
    team_id: str = TEAM_ID,
    user_name: str | None = None,
) -> bytes:
    """The form body of a slash command, fields in Slack's order."""
    fields = {
        "token": "deprecated-verification-token",
        "team_id": team_id,
        "team_domain": "standin",
        "channel_id": channel_id,
        "channel_name": channel_id.lower(),
        "user_id": user_id,
        "user_name": user_name or user_id.lower(),
        "command": command,
        "text": text,
        "api_app_id": APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id or new_trigger_id(),
    }
    return urlencode(fields).encode()


def block_actions_payload(
    *,
    user_id: str,
    channel_id: str,
    message: dict[str, Any],
    action_id: str,
    value: str,
    response_url: str,
    block_id: str | None = None,
    trigger_id: str | None = None,
    team_id: str = TEAM_ID,
    action_ts: str | None = None,
) -> dict[str, Any]:
    """A `block_actions` payload for a button click on `message`."""
    return {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_id.lower(), "team_id": team_id},
        "api_app_id": APP_ID,
        "token": "deprecated-verification-token",
        "container": {
            "type": "message",
            "message_ts": message.get("ts"),
            "channel_id": channel_id,
            "is_ephemeral": False,
        },
        "trigger_id": trigger_id or new_trigger_id(),
        "team": {"id": team_id, "domain": "standin"},
        "channel": {"id": channel_id, "name": channel_id.lower()},
        "message": message,
        "response_url": response_url,
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": block_id or "",
                "value": value,
                "action_ts": action_ts or f"{time.time():.6f}",
            }
        ],
    }


def app_home_opened_payload(
    *, user_id: str, bot_user_id: str, tab: str = "home", team_id: str = TEAM_ID
) -> dict[str, Any]:
    """An Events API `event_callback` for a user opening the app's Home tab."""
    now = time.time()
    return {
        "token": "deprecated-verification-token",
        "team_id": team_id,
        "api_app_id": APP_ID,
        "event": {
            "type": "app_home_opened",
            "user": user_id,
            "channel": "D" + user_id.removeprefix("U")[:10].upper(),
            "tab": tab,
            "event_ts": f"{now:.6f}",
        },
        "type": "event_callback",
        "event_id": "Ev" + secrets.token_hex(8).upper(),
        "event_time": int(now),
        "authorizations": [{"enterprise_id": None, "team_id": team_id,
                            "user_id": bot_user_id, "is_bot": True,
                            "is_enterprise_install": False}],
        "is_ext_shared_channel": False,
    }


def block_actions_body(payload: dict[str, Any]) -> bytes:
    """The form body of an interactivity request: one `payload` field of JSON."""
    return urlencode({"payload": json.dumps(payload, separators=(",", ":"))}).encode()


@dataclass(frozen=True)
class Signer:
    """Signs and sends bodies to one Slack request URL (the app's `/slack/events`)."""

    url: str
    secret: str

    def headers(
        self,
        body: bytes,
        *,
        now: float | None = None,
        tamper: bool = False,
        stale: bool = False,
        future: bool = False,
        unsigned: bool = False,
        retry_num: int | None = None,
        content_type: str = FORM,
    ) -> dict[str, str]:
        """Headers Slack would send for `body`; the flags make them wrong on purpose."""
        t = int(time.time() if now is None else now)
        if stale:
            t -= SKEW_SECONDS
        if future:
            t += SKEW_SECONDS
        ts = str(t)
        h = {"Content-Type": content_type, "User-Agent": "Slackbot 1.0"}
        if unsigned:
            return h
        sig = signature(self.secret, ts, body + (b"x" if tamper else b""))
        h["X-Slack-Request-Timestamp"] = ts
        h["X-Slack-Signature"] = sig
        if retry_num is not None:
            h["X-Slack-Retry-Num"] = str(retry_num)
            h["X-Slack-Retry-Reason"] = "http_timeout"
        return h

    async def send(self, client: httpx.AsyncClient, body: bytes, **flags: Any) -> httpx.Response:
        """POST `body` signed (see `headers` for the flags)."""
        return await client.post(self.url, content=body, headers=self.headers(body, **flags))
