"""The stand-in's control API (`/_standin/*`): what the demo page and the tests use to act
as Slack's users: send commands, clicks and App Home openings (signed HTTP, or Socket Mode
envelopes when the app is connected), read the channels and Home tabs, serve
`response_url`s. See `sim.slack.standin`.

This module imports nothing of the product: it is Slack's side of the contract.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse

from sim.slack.signing import (
    JSON,
    Signer,
    app_home_opened_payload,
    block_actions_body,
    block_actions_payload,
    slash_command_body,
)
from sim.slack.socket_mode import SocketHub
from sim.slack.store import BOT_USER_ID, Message, StandinStore

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


class Control:
    """Handlers of the `/_standin/*` routes for one app."""

    def __init__(
        self, store: StandinStore, bot_url: str, signing_secret: str, hub: SocketHub
    ) -> None:
        self.store = store
        self.bot_url = bot_url
        self.signing_secret = signing_secret
        self.hub = hub
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
        home = s.homes.get(viewer) if viewer else None
        return JSONResponse(
            {
                "version": s.version,
                "users": [{"id": u.id, "name": u.name, "role": u.role} for u in s.users.values()],
                "channels": {
                    ch: [m.public() for m in s.messages(ch, viewer=viewer)] for ch in s.channels
                },
                "home": home.public() if home is not None else None,
            }
        )

    async def calls(self, request: Request) -> JSONResponse:
        """Every Web API call received, or those after the first `?since=N`."""
        try:
            since = max(0, int(request.query_params.get("since", "0")))
        except ValueError:
            return _bad("since must be an integer")
        return JSONResponse([c.public() for c in self.store.calls[since:]])

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

    def _use_socket(self, body: Mapping[str, Any]) -> bool | None:
        """Socket Mode when asked, or when a client is connected and HTTP was not asked;
        None for an unknown transport."""
        transport = body.get("transport")
        if transport is None:
            return self.hub.connected
        return {"socket": True, "http": False}.get(transport)

    async def command(self, request: Request) -> JSONResponse:
        body = await request.json()
        vals = _strings(body, "user_id", "channel_id", "text")
        if vals is None:
            return _bad("need user_id, channel_id and text (strings)")
        use_socket = self._use_socket(body)
        command = body.get("command", "/pps")
        if use_socket is None or not isinstance(command, str):
            return _bad("transport is http or socket; command is a string")
        user, channel, text = vals
        target = _ResponseTarget(channel=channel, user=user)
        form = slash_command_body(
            user_id=user,
            channel_id=channel,
            text=text,
            command=command,
            response_url=self._response_url(request, target),
        )
        if use_socket:
            # The same fields as the HTTP form, as one JSON object (what Slack sends).
            fields = dict(parse_qsl(form.decode(), keep_blank_values=True))
            d = await self.hub.deliver("slash_commands", fields, accepts_response_payload=True)
            if d.ok and d.ack_payload:
                self._record_reply(target, d.ack_payload)
            reply = d.ack_payload if d.ok else {"error": d.outcome}
            return JSONResponse({"status": d.status, "body": reply, "transport": "socket"})
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
        use_socket = self._use_socket(body)
        if use_socket is None:
            return _bad("transport is http or socket")
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
        if use_socket:
            d = await self.hub.deliver("interactive", payload, accepts_response_payload=False)
            failed = {} if d.ok else {"error": d.outcome}
            return JSONResponse({"status": d.status, "transport": "socket", **failed})
        try:
            resp = await self.signer.send(self._http(), block_actions_body(payload))
        except httpx.HTTPError as exc:
            return JSONResponse({"status": 502, "error": f"bot unreachable: {exc!r}"})
        return JSONResponse({"status": resp.status_code})

    async def home_opened(self, request: Request) -> JSONResponse:
        """A user opens the app's Home tab: Slack sends the app an `app_home_opened` event."""
        body = await request.json()
        vals = _strings(body, "user_id")
        if vals is None:
            return _bad("need user_id (string)")
        use_socket = self._use_socket(body)
        tab = body.get("tab", "home")
        if use_socket is None or tab not in ("home", "messages"):
            return _bad("transport is http or socket; tab is home or messages")
        payload = app_home_opened_payload(user_id=vals[0], bot_user_id=BOT_USER_ID, tab=tab)
        if use_socket:
            d = await self.hub.deliver("events_api", payload, accepts_response_payload=False)
            failed = {} if d.ok else {"error": d.outcome}
            return JSONResponse({"status": d.status, "transport": "socket", **failed})
        raw = json.dumps(payload, separators=(",", ":")).encode()
        try:
            resp = await self.signer.send(self._http(), raw, content_type=JSON)
        except httpx.HTTPError as exc:
            return JSONResponse({"status": 502, "error": f"bot unreachable: {exc!r}"})
        return JSONResponse({"status": resp.status_code})

    async def home(self, request: Request) -> JSONResponse:
        """`GET /_standin/home?user=U...`: that user's Home tab (404 before any publish)."""
        tab = self.store.homes.get(request.query_params.get("user", ""))
        if tab is None:
            return _bad("no Home tab published for that user", 404)
        return JSONResponse(tab.public())

    async def socket_state(self, request: Request) -> JSONResponse:
        return JSONResponse(self.hub.public())

    async def socket_drop(self, request: Request) -> JSONResponse:
        body = await request.json() if await request.body() else {}
        mode = body.get("mode", "close") if isinstance(body, dict) else None
        if mode not in ("close", "disconnect"):
            return _bad("mode is close or disconnect")
        n = await (self.hub.drop() if mode == "close" else self.hub.refresh())
        return JSONResponse({"closed" if mode == "close" else "asked": n})

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
