"""The Web API subset the bot calls, at `/api/<method>`, with Slack's response shapes.

auth.test, chat.postMessage, chat.update, chat.postEphemeral, users.info,
usergroups.users.list, views.publish (the App Home tab, checked like Slack does) and, with a
`SocketHub`, apps.connections.open (app-level `xapp-`
token only; every other method refuses an app token, as Slack does). Arguments come as
JSON, form fields or query parameters, like Slack accepts them. Every message is checked
as Slack would (see `sim.slack.blocks`); rate limits and injected faults answer 429 with
`Retry-After`, or an error.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sim.slack.blocks import MessageInvalid, check_home_view, check_message
from sim.slack.signing import TEAM_ID
from sim.slack.socket_mode import SocketHub
from sim.slack.store import BOT_ID, BOT_USER_ID, Call, Message, StandinStore

Args = dict[str, Any]
Handler = Callable[[StandinStore, Args], Args]
_JSON_ARGS = ("blocks", "metadata", "attachments", "view")


class ApiError(Exception):
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


def _bool(v: Any) -> bool:
    return v is True or (isinstance(v, str) and v.lower() in ("1", "true"))


async def _read_args(request: Request) -> tuple[Args, str | None]:
    args: Args = dict(request.query_params)
    ctype = request.headers.get("content-type", "")
    if request.method == "POST":
        if ctype.startswith("application/json"):
            body = await request.json()
            if isinstance(body, dict):
                args.update(body)
        else:
            form = await request.form()
            args.update({k: v for k, v in form.items() if isinstance(v, str)})
            for k in _JSON_ARGS:
                if isinstance(args.get(k), str):
                    # left as a string when it is not JSON: check_message refuses it
                    with contextlib.suppress(ValueError):
                        args[k] = json.loads(args[k])
    auth = request.headers.get("authorization", "")
    token = auth[7:] if auth.lower().startswith("bearer ") else args.pop("token", None)
    args.pop("token", None)
    return args, token


def _auth_test(store: StandinStore, args: Args) -> Args:
    return {
        "url": store.team_url,
        "team": "Stand-in",
        "user": "ppsbot",
        "team_id": TEAM_ID,
        "user_id": BOT_USER_ID,
        "bot_id": BOT_ID,
        "is_enterprise_install": False,
    }


def _channel(args: Args) -> str:
    ch = args.get("channel")
    if not isinstance(ch, str) or not ch:
        raise ApiError("channel_not_found")
    return ch


def _post_message(store: StandinStore, args: Args) -> Args:
    channel = _channel(args)
    check_message(args)
    thread_ts = args.get("thread_ts") or None
    if thread_ts is not None:
        parent = store.find(channel, str(thread_ts))
        if parent is None or parent.ephemeral_for is not None:
            raise ApiError("thread_not_found")
        thread_ts = parent.thread_ts or parent.ts
    msg = store.add(
        Message(
            channel=channel,
            ts=store.next_ts(channel),
            text=args.get("text") or "",
            blocks=args.get("blocks") or [],
            thread_ts=thread_ts,
            metadata=args.get("metadata"),
            reply_broadcast=bool(thread_ts) and _bool(args.get("reply_broadcast")),
        )
    )
    return {"channel": channel, "ts": msg.ts, "message": msg.slack_shape()}


def _update(store: StandinStore, args: Args) -> Args:
    channel = _channel(args)
    msg = store.find(channel, str(args.get("ts", "")))
    if msg is None or msg.ephemeral_for is not None:
        raise ApiError("message_not_found")
    if msg.user != BOT_USER_ID:
        raise ApiError("cant_update_message")
    check_message(args, update=True)
    if "text" not in args and "blocks" not in args:
        raise ApiError("no_text")
    msg.text = args.get("text") or ""
    # Slack drops the blocks when an update carries none, and keeps metadata only if resent.
    msg.blocks = args.get("blocks") or []
    msg.metadata = args.get("metadata")
    msg.edited = True
    store.touch()
    return {"channel": channel, "ts": msg.ts, "text": msg.text, "message": msg.slack_shape()}


def _post_ephemeral(store: StandinStore, args: Args) -> Args:
    channel = _channel(args)
    user = args.get("user")
    if not isinstance(user, str) or user not in store.users:
        raise ApiError("user_not_in_channel")
    check_message(args)
    msg = store.add(
        Message(
            channel=channel,
            ts=store.next_ts(channel),
            text=args.get("text") or "",
            blocks=args.get("blocks") or [],
            thread_ts=args.get("thread_ts") or None,
            ephemeral_for=user,
        )
    )
    return {"message_ts": msg.ts}


def _users_info(store: StandinStore, args: Args) -> Args:
    u = store.users.get(str(args.get("user", "")))
    if u is None:
        raise ApiError("user_not_found")
    return {
        "user": {
            "id": u.id,
            "team_id": TEAM_ID,
            "name": u.name,
            "real_name": u.name,
            "deleted": False,
            "is_bot": False,
            "tz": "UTC",
            "profile": {"real_name": u.name, "display_name": u.name},
        }
    }


def _usergroup_users(store: StandinStore, args: Args) -> Args:
    members = store.usergroups.get(str(args.get("usergroup", "")))
    if members is None:
        raise ApiError("no_such_subteam")
    return {"users": list(members)}


def _views_publish(store: StandinStore, args: Args) -> Args:
    user = args.get("user_id")
    if not isinstance(user, str) or user not in store.users:
        raise ApiError("user_not_found")
    view = args.get("view")
    check_home_view(view)
    assert isinstance(view, dict)
    tab = store.publish_home(user, view)
    return {"view": {"id": f"VHOME{user.removeprefix('U')}", "team_id": TEAM_ID,
                     "app_id": "A0PPSBOT", "bot_id": BOT_ID, **tab.view}}


CONNECTIONS_OPEN = "apps.connections.open"
METHODS: dict[str, Handler] = {
    "auth.test": _auth_test,
    "chat.postMessage": _post_message,
    "chat.update": _update,
    "chat.postEphemeral": _post_ephemeral,
    "users.info": _users_info,
    "usergroups.users.list": _usergroup_users,
    "views.publish": _views_publish,
}


def api_route(store: StandinStore, hub: SocketHub | None = None) -> Route:
    """The `/api/{method}` route serving `METHODS` against `store` (and
    `apps.connections.open` against `hub`, when given)."""

    async def endpoint(request: Request) -> JSONResponse:
        method = request.path_params["method"]
        store.team_url = str(request.base_url)
        args, token = await _read_args(request)
        now = time.time()
        call = Call(method=method, args=args, at=now, token_type=_token_type(token))
        bucket = store.limit_bucket(method, args)
        call.early = store.is_early(bucket, now)
        fault = store.take_fault(method)
        retry_after = store.limited(bucket, method, now)
        if fault is not None and fault.error == "ratelimited":
            retry_after = fault.retry_after
        if retry_after is not None:
            store.refuse_until(bucket, now, retry_after)
            return _answer(
                store,
                call,
                {"ok": False, "error": "ratelimited"},
                429,
                {"Retry-After": str(retry_after)},
            )
        if fault is not None and fault.error == "http_500":
            return _answer(store, call, {"ok": False, "error": "internal_error"}, 500)
        result: Args
        if method == CONNECTIONS_OPEN and hub is not None:
            error = hub.token_error(token)
            if error is None and fault is not None:
                error = fault.error
            if error is not None:
                result = {"ok": False, "error": error}
            else:
                result = {"ok": True, "url": await hub.open_url(request.url.hostname)}
        elif token and token.startswith("xapp-"):
            result = {"ok": False, "error": "not_allowed_token_type"}
        elif not token or not token.startswith("xox"):
            result = {"ok": False, "error": "not_authed"}
        elif fault is not None:
            result = {"ok": False, "error": fault.error}
        elif method not in METHODS:
            result = {"ok": False, "error": "unknown_method"}
        else:
            try:
                result = {"ok": True, **METHODS[method](store, args)}
            except ApiError as exc:
                result = {"ok": False, "error": exc.error}
            except MessageInvalid as exc:
                result = {
                    "ok": False,
                    "error": exc.error,
                    "response_metadata": {"messages": [f"[ERROR] {exc.detail}"]},
                }
        return _answer(store, call, result, 200)

    return Route("/api/{method}", endpoint, methods=["GET", "POST"])


def _token_type(token: str | None) -> str | None:
    """`xoxb`, `xapp`, ...: what kind of token a call carried (never the token itself)."""
    if not token:
        return None
    kind = token.split("-", 1)[0]
    return kind if kind.isalpha() and len(kind) <= 8 else "other"


def _answer(
    store: StandinStore,
    call: Call,
    body: Args,
    status: int,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    call.status, call.ok, call.error = status, bool(body.get("ok")), body.get("error")
    store.record(call)
    return JSONResponse(body, status_code=status, headers=headers)
