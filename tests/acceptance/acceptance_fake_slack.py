"""A minimal, strict fake of Slack written from SLACK.md alone (not sim/slack/standin.py).

It answers only `auth.test`, `chat.postMessage`, `chat.update`, `chat.postEphemeral`,
`usergroups.users.list` and (when enabled) `users.info`; any other method gets
`{"ok": false, "error": "unknown_method"}`. Every call is recorded. Messages are checked
the way Slack would: bearer token, channel, a non-empty `text` fallback, blocks parsed by
`slack_sdk.models` within the limits, `thread_ts` naming an existing message, `chat.update`
naming an existing message. Problems are answered with Slack's error and recorded in
`problems`, so a test can assert there were none. `POST /response/<id>` records
`response_url` posts. One error per method can be injected with `fail_next`.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from slack_sdk.models.blocks import Block
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

KNOWN = ("auth.test", "chat.postMessage", "chat.update", "chat.postEphemeral",
         "usergroups.users.list", "users.info")
MAX_BLOCKS = 50


@dataclass
class Call:
    """One Web API call as received (args merged from query, form and JSON)."""

    method: str
    args: dict[str, Any]
    ok: bool
    error: str | None
    at: float


@dataclass
class Msg:
    """A message as the fake channel holds it (latest content after updates)."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    metadata: dict[str, Any] | None
    thread_ts: str | None
    broadcast: bool
    updates: int = 0


@dataclass
class Ephemeral:
    channel: str
    user: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None


def _decode_json_fields(args: dict[str, Any]) -> dict[str, Any]:
    # Form-encoded calls carry blocks/metadata as JSON strings.
    for k in ("blocks", "metadata", "attachments"):
        v = args.get(k)
        if isinstance(v, str) and v:
            with contextlib.suppress(ValueError):
                args[k] = json.loads(v)
    return args


def block_problems(blocks: Any) -> list[str]:
    """What Slack would refuse in `blocks` (slack_sdk's validators plus the 50-block cap)."""
    if blocks is None:
        return []
    if not isinstance(blocks, list):
        return ["blocks is not a list"]
    out = []
    if len(blocks) > MAX_BLOCKS:
        out.append(f"{len(blocks)} blocks > {MAX_BLOCKS}")
    for i, b in enumerate(blocks):
        try:
            parsed = Block.parse(b)
            if parsed is None or type(parsed) is Block:
                out.append(f"block {i}: unknown type {b.get('type')!r}")
                continue
            parsed.to_dict()  # runs the per-field validators (lengths, element counts)
        except Exception as exc:
            out.append(f"block {i}: {exc!r}")
    return out


@dataclass
class FakeSlack:
    """State and behaviour of the fake; `app` serves it."""

    token: str
    users_info: bool = True
    groups: dict[str, list[str]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    messages: list[Msg] = field(default_factory=list)
    ephemerals: list[Ephemeral] = field(default_factory=list)
    responses: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    fail_next: dict[str, list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    fail_when: list[tuple[str, Callable[[dict[str, Any]], bool], int, dict[str, Any]]] = field(
        default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._ts = itertools.count(1)
        self.app = Starlette(routes=[
            # POST only: Slack accepts GET too, but a minimal fake may not.
            Route("/api/{method}", self._api, methods=["POST"]),
            Route("/response/{rid}", self._response, methods=["POST"]),
        ])

    # -- views for tests ---------------------------------------------------------------
    def snapshot(self) -> tuple[list[Call], list[Msg], list[Ephemeral]]:
        """Copies of the calls, messages (as they look now) and ephemerals so far."""
        with self.lock:
            return (list(self.calls), copy.deepcopy(self.messages), list(self.ephemerals))

    def find(self, channel: str, ts: str) -> Msg | None:
        """A copy of the message as it looks now."""
        with self.lock:
            m = next((m for m in self.messages if m.channel == channel and m.ts == ts), None)
            return copy.deepcopy(m)

    def inject(self, method: str, status: int, body: dict[str, Any],
               when: Callable[[dict[str, Any]], bool] | None = None) -> None:
        """Answer the next call of `method` (whose args satisfy `when`) with this status and
        body, once; later calls are answered normally."""
        with self.lock:
            if when is None:
                self.fail_next.setdefault(method, []).append((status, body))
            else:
                self.fail_when.append((method, when, status, body))

    # -- HTTP --------------------------------------------------------------------------
    async def _args(self, request: Request) -> dict[str, Any]:
        # The body only (a minimal fake reads what a form or JSON POST carries).
        args: dict[str, Any] = {}
        raw = await request.body()
        ctype = request.headers.get("content-type", "")
        if raw and "json" in ctype:
            args.update(json.loads(raw))
        elif raw:
            args.update(dict(parse_qsl(raw.decode(), keep_blank_values=True)))
        return _decode_json_fields(args)

    async def _response(self, request: Request) -> Response:
        body = json.loads(await request.body() or b"{}")
        with self.lock:
            self.responses.append((request.path_params["rid"], body))
        return Response("ok")

    async def _api(self, request: Request) -> Response:
        method = request.path_params["method"]
        args = await self._args(request)
        auth = request.headers.get("authorization", "")
        with self.lock:
            status, body = self._answer(method, args, auth)
            self.calls.append(Call(method, args, bool(body.get("ok")), body.get("error"),
                                   time.monotonic()))
        headers = {"Retry-After": "1"} if status == 429 else None
        return JSONResponse(body, status_code=status, headers=headers)

    def _answer(self, method: str, args: dict[str, Any], auth: str) -> tuple[int, dict[str, Any]]:
        if method not in KNOWN or (method == "users.info" and not self.users_info):
            return 200, {"ok": False, "error": "unknown_method"}
        if auth != f"Bearer {self.token}":
            self.problems.append(f"{method}: bad or missing token")
            return 200, {"ok": False, "error": "invalid_auth"}
        queued = self.fail_next.get(method)
        if queued:
            return queued.pop(0)
        for i, (m, when, status, body) in enumerate(self.fail_when):
            if m == method and when(args):
                del self.fail_when[i]
                return status, body
        if method == "auth.test":
            return 200, {"ok": True, "url": "https://fake.slack/", "team": "Fake", "user": "ppsbot",
                         "team_id": "T0FAKE", "user_id": "U0BOT", "bot_id": "B0BOT"}
        if method == "usergroups.users.list":
            group = str(args.get("usergroup", ""))
            if group not in self.groups:
                return 200, {"ok": False, "error": "no_such_subteam"}
            return 200, {"ok": True, "users": list(self.groups[group])}
        if method == "users.info":
            user = str(args.get("user", ""))
            return 200, {"ok": True, "user": {"id": user, "name": user.lower()}}
        return self._message_call(method, args)

    def _check(self, method: str, args: dict[str, Any]) -> str | None:
        text = args.get("text")
        if not isinstance(text, str) or not text.strip():
            self.problems.append(f"{method}: no plain text fallback: {args!r:.300}")
            return "no_text"
        probs = block_problems(args.get("blocks"))
        if probs:
            self.problems.append(f"{method}: invalid blocks: {probs}")
            return "invalid_blocks"
        meta = args.get("metadata")
        if meta is not None and (not isinstance(meta, dict) or "event_type" not in meta
                                 or not isinstance(meta.get("event_payload"), dict)):
            self.problems.append(f"{method}: bad metadata {meta!r}")
            return "invalid_metadata"
        return None

    def _message_call(self, method: str, args: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        channel = str(args.get("channel") or "")
        if not channel:
            self.problems.append(f"{method}: no channel")
            return 200, {"ok": False, "error": "channel_not_found"}
        err = self._check(method, args)
        if err:
            return 200, {"ok": False, "error": err}
        blocks = args.get("blocks") or []
        thread_ts = args.get("thread_ts") or None
        if thread_ts and not any(m.channel == channel and m.ts == thread_ts
                                 for m in self.messages):
            self.problems.append(f"{method}: thread_ts {thread_ts} not in {channel}")
            return 200, {"ok": False, "error": "thread_not_found"}
        if method == "chat.postEphemeral":
            self.ephemerals.append(Ephemeral(channel, str(args.get("user", "")), args["text"],
                                             blocks, thread_ts))
            return 200, {"ok": True, "message_ts": f"{time.time():.6f}"}
        if method == "chat.postMessage":
            ts = f"1700000000.{next(self._ts):06d}"
            broadcast = args.get("reply_broadcast") in (True, "true", "1", 1)
            self.messages.append(Msg(channel, ts, args["text"], blocks, args.get("metadata"),
                                     thread_ts, broadcast))
            return 200, {"ok": True, "channel": channel, "ts": ts,
                         "message": {"text": args["text"], "ts": ts}}
        ts = str(args.get("ts") or "")
        msg = next((m for m in self.messages if m.channel == channel and m.ts == ts), None)
        if msg is None:
            self.problems.append(f"chat.update: no message {channel}/{ts}")
            return 200, {"ok": False, "error": "message_not_found"}
        msg.text, msg.blocks, msg.metadata = args["text"], blocks, args.get("metadata")
        msg.updates += 1
        return 200, {"ok": True, "channel": channel, "ts": ts, "text": args["text"]}
