"""A local Slack stand-in: the Web API subset the bot calls plus a JSON control API.

    app = create_standin_app(bot_url="http://127.0.0.1:3000/slack/events",
                             signing_secret="...")
    # or, from a shell / the demo:  python -m sim.slack_standin --port 3100 \
    #     --bot-url http://127.0.0.1:3000/slack/events --signing-secret "$SLACK_SIGNING_SECRET"

Point the bot at it with `SLACK_API_URL=http://<host>:<port>/api/`.

Control API (what the demo page and the tests use):
- `GET  /_standin/state?viewer=<user_id>&since=<version>` -> `{"version", "users",
  "channels": {"<id>": [message...]}}`; ephemeral messages only for their viewer; when
  `since` equals the current version the call waits up to 20 s for a change.
- `POST /_standin/command {"user_id", "channel_id", "text"}` -> sends a signed `/pps`
  command; the ack body is recorded as an ephemeral message (or in-channel if the ack says
  so); returns `{"status", "body"}`.
- `POST /_standin/click {"user_id", "channel_id", "message_ts", "action_id", "value"}` ->
  sends a signed `block_actions` payload; returns `{"status"}`.
- `POST /_standin/response/<id>` -> the `response_url` target (5 uses, like Slack).
- `GET  /_standin/calls` -> a JSON list of the recorded Web API calls.

This module imports nothing of the product: it is Slack's side of the contract.
"""

from __future__ import annotations

import argparse
import os
import secrets
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from sim.slack_signing import Signer, block_actions_body, block_actions_payload, slash_command_body
from sim.slack_store import (
    DEFAULT_USERS,
    Message,
    RateLimit,
    StandinStore,
    StandinUser,
)
from sim.slack_webapi import api_route

LONG_POLL_SECONDS = 20.0
RESPONSE_URL_USES = 5
BOT_TIMEOUT_SECONDS = 10.0


@dataclass
class _ResponseTarget:
    channel: str
    user: str
    message_ts: str | None = None  # the clicked message (block_actions) or None
    uses: int = 0


def _bad(msg: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": msg}, status_code=status)


def _strings(body: Any, *names: str) -> list[str] | None:
    if not isinstance(body, dict):
        return None
    vals = [body.get(n) for n in names]
    strs = [v for v in vals if isinstance(v, str)]
    return strs if len(strs) == len(vals) else None


class _Control:
    """Handlers of the `/_standin/*` routes for one app."""

    def __init__(self, store: StandinStore, bot_url: str, signing_secret: str) -> None:
        self.store = store
        self.bot_url = bot_url
        self.signing_secret = signing_secret
        self.responses: dict[str, _ResponseTarget] = {}
        self.client: httpx.AsyncClient | None = None

    @property
    def signer(self) -> Signer:
        return Signer(self.bot_url, self.signing_secret)

    def _response_url(self, request: Request, target: _ResponseTarget) -> str:
        rid = secrets.token_hex(12)
        self.responses[rid] = target
        return f"{str(request.base_url).rstrip('/')}/_standin/response/{rid}"

    def _http(self) -> httpx.AsyncClient:
        if self.client is None:
            self.client = httpx.AsyncClient(timeout=BOT_TIMEOUT_SECONDS)
        return self.client

    async def state(self, request: Request) -> JSONResponse:
        viewer = request.query_params.get("viewer")
        since = request.query_params.get("since")
        if since is not None and since.lstrip("-").isdigit():
            await self.store.wait_change(int(since), LONG_POLL_SECONDS)
        s = self.store
        return JSONResponse(
            {
                "version": s.version,
                "users": [{"id": u.id, "name": u.name, "role": u.role} for u in s.users.values()],
                "channels": {
                    ch: [m.public() for m in s.messages(ch, viewer=viewer)] for ch in s.channels
                },
            }
        )

    async def calls(self, request: Request) -> JSONResponse:
        return JSONResponse([c.public() for c in self.store.calls])

    def _record_reply(self, target: _ResponseTarget, body: Mapping[str, Any]) -> None:
        """Show a command ack or a response_url post the way Slack would."""
        text, blocks = body.get("text"), body.get("blocks")
        if not text and not blocks:
            return
        in_channel = body.get("response_type") == "in_channel"
        self.store.add(
            Message(
                channel=target.channel,
                ts=self.store.next_ts(target.channel),
                text=str(text or ""),
                blocks=blocks if isinstance(blocks, list) else [],
                ephemeral_for=None if in_channel else target.user,
            )
        )

    async def command(self, request: Request) -> JSONResponse:
        body = await request.json()
        vals = _strings(body, "user_id", "channel_id", "text")
        if vals is None:
            return _bad("need user_id, channel_id and text (strings)")
        user, channel, text = vals
        target = _ResponseTarget(channel=channel, user=user)
        form = slash_command_body(
            user_id=user,
            channel_id=channel,
            text=text,
            response_url=self._response_url(request, target),
        )
        try:
            resp = await self.signer.send(self._http(), form)
        except httpx.HTTPError as exc:
            return JSONResponse({"status": 502, "body": {"error": f"bot unreachable: {exc!r}"}})
        parsed: Any = None
        if resp.content:
            try:
                parsed = resp.json()
            except ValueError:
                parsed = {"text": resp.text}
        if resp.status_code == 200 and isinstance(parsed, dict):
            self._record_reply(target, parsed)
        return JSONResponse({"status": resp.status_code, "body": parsed})

    async def click(self, request: Request) -> JSONResponse:
        body = await request.json()
        vals = _strings(body, "user_id", "channel_id", "message_ts", "action_id")
        if vals is None:
            return _bad("need user_id, channel_id, message_ts and action_id (strings)")
        user, channel, ts, action_id = vals
        value = body.get("value")
        msg = self.store.find(channel, ts)
        if msg is None or (msg.ephemeral_for not in (None, user)):
            return _bad("message_not_found", 404)
        button = _find_button(msg, action_id, value if isinstance(value, str) else None)
        if button is None:
            return _bad("action_not_found", 404)
        block_id, btn = button
        target = _ResponseTarget(channel=channel, user=user, message_ts=ts)
        payload = block_actions_payload(
            user_id=user,
            channel_id=channel,
            message=msg.slack_shape(),
            action_id=action_id,
            value=str(btn.get("value", "")),
            block_id=block_id,
            response_url=self._response_url(request, target),
        )
        try:
            resp = await self.signer.send(self._http(), block_actions_body(payload))
        except httpx.HTTPError as exc:
            return JSONResponse({"status": 502, "error": f"bot unreachable: {exc!r}"})
        return JSONResponse({"status": resp.status_code})

    async def response(self, request: Request) -> JSONResponse:
        target = self.responses.get(request.path_params["rid"])
        if target is None:
            return JSONResponse({"ok": False, "error": "expired_url"}, status_code=404)
        if target.uses >= RESPONSE_URL_USES:
            return JSONResponse({"ok": False, "error": "used_url"}, status_code=404)
        target.uses += 1
        body = await request.json()
        if not isinstance(body, dict):
            return JSONResponse({"ok": False, "error": "invalid_payload"}, status_code=400)
        original = self.store.find(target.channel, target.message_ts) if target.message_ts else None
        if original is not None and body.get("delete_original"):
            self.store.channels[target.channel].remove(original)
            self.store.touch()
        elif original is not None and body.get("replace_original"):
            original.text = str(body.get("text") or "")
            original.blocks = body.get("blocks") or []
            original.edited = True
            self.store.touch()
        else:
            self._record_reply(target, body)
        return JSONResponse({"ok": True})


def _find_button(
    msg: Message, action_id: str, value: str | None
) -> tuple[str | None, dict[str, Any]] | None:
    for block in msg.blocks:
        for el in block.get("elements", []) if block.get("type") == "actions" else []:
            if el.get("action_id") == action_id and (value is None or el.get("value") == value):
                return block.get("block_id"), el
        acc = block.get("accessory")
        if (
            isinstance(acc, dict)
            and acc.get("action_id") == action_id
            and (value is None or acc.get("value") == value)
        ):
            return block.get("block_id"), acc
    return None


def create_standin_app(
    bot_url: str,
    signing_secret: str,
    users: Sequence[StandinUser] | None = None,
    extra_routes: list[BaseRoute] | None = None,
    rate_limit: RateLimit | None = None,
    usergroups: Mapping[str, Sequence[str]] | None = None,
) -> Starlette:
    """The stand-in app; its store is `app.state.standin`, its control `app.state.control`.

    `bot_url` is the bot's request URL (`.../slack/events`); it may be changed later via
    `app.state.control.bot_url` (handy when both ports are only known after binding).
    """
    store = StandinStore(users=users or DEFAULT_USERS, usergroups=usergroups, rate_limit=rate_limit)
    control = _Control(store, bot_url, signing_secret)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if control.client is not None:
            await control.client.aclose()

    routes: list[BaseRoute] = [
        api_route(store),
        Route("/_standin/state", control.state, methods=["GET"]),
        Route("/_standin/calls", control.calls, methods=["GET"]),
        Route("/_standin/command", control.command, methods=["POST"]),
        Route("/_standin/click", control.click, methods=["POST"]),
        Route("/_standin/response/{rid}", control.response, methods=["POST"]),
        *(extra_routes or []),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.standin = store
    app.state.control = control
    return app


def run(
    *,
    host: str = "127.0.0.1",
    port: int = 3100,
    bot_url: str = "http://127.0.0.1:3000/slack/events",
    signing_secret: str = "",
    extra_routes: list[BaseRoute] | None = None,
    rate_limit: RateLimit | None = None,
    log_level: str = "warning",
) -> None:
    """Serve the stand-in under uvicorn until interrupted (blocking)."""
    app = create_standin_app(
        bot_url, signing_secret, extra_routes=extra_routes, rate_limit=rate_limit
    )
    uvicorn.run(app, host=host, port=port, log_level=log_level)


def main(argv: list[str] | None = None) -> int:
    """`python -m sim.slack_standin [--host H] [--port P] [--bot-url U] [--signing-secret S]`."""
    p = argparse.ArgumentParser(prog="slack-standin", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3100)
    p.add_argument("--bot-url", default="http://127.0.0.1:3000/slack/events")
    p.add_argument("--signing-secret", default=os.environ.get("SLACK_SIGNING_SECRET", ""))
    p.add_argument(
        "--rate-limit",
        type=int,
        default=0,
        help="answer 429 above this many calls per second per method (0: off)",
    )
    a = p.parse_args(argv)
    if not a.signing_secret:
        p.error("--signing-secret or SLACK_SIGNING_SECRET is required")
    run(
        host=a.host,
        port=a.port,
        bot_url=a.bot_url,
        signing_secret=a.signing_secret,
        rate_limit=RateLimit(limit=a.rate_limit) if a.rate_limit > 0 else None,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
