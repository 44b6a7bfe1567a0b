"""A local Slack stand-in: the Web API subset the bot calls plus a JSON control API.

    app = create_standin_app(bot_url="http://127.0.0.1:3000/slack/events",
                             signing_secret="...")
    # or, from a shell / the demo:  python -m sim.slack.standin --port 3100 \
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
- `POST /_standin/home_opened {"user_id", "tab"?}` -> sends a signed `app_home_opened`
  event (Events API, JSON) as when the user opens the app's Home tab; returns `{"status"}`.
- `GET  /_standin/home?user=<user_id>` -> `{"view", "published_at", "publishes"}`: what the
  app last published to that user's Home tab with `views.publish` (also in `state` as
  `"home"` for the viewer).
- `POST /_standin/response/<id>` -> the `response_url` target (5 uses, like Slack).
- `GET  /_standin/calls[?since=N]` -> a JSON list of the recorded Web API calls (from the
  N+1-th on).
- Files (`sim.slack.files`): `files.getUploadURLExternal`, the upload URL it hands out,
  `files.completeUploadExternal`; `GET /_standin/files` and `/_standin/files/<id>`.
- Escalation webhooks (`sim.slack.webhook`): `POST /_standin/webhook` records a PagerDuty
  Events API v2 event; `GET /_standin/webhook` lists them; `POST /_standin/webhook/fail`.
- `GET  /_standin/socket` -> Socket Mode connections and envelopes (`sim.slack.socket_mode`);
  `POST /_standin/socket/drop {"mode": "close" | "disconnect"}` closes every connection
  (or asks its client to move), as Slack does now and then.

Socket Mode: once an app opened a connection (`apps.connections.open`, then the WebSocket),
commands, clicks and events go to it as `slash_commands` / `interactive` / `events_api`
envelopes instead of HTTP, and the ack's payload is the reply; those answers add
`"transport": "socket"`. `"transport": "http" | "socket"` in a body forces one way.

This module imports nothing of the product: it is Slack's side of the contract.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager

import uvicorn
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Route

from sim.slack.control import Control
from sim.slack.files import FileApi
from sim.slack.socket_mode import ACK_TIMEOUT_SECONDS, SocketHub
from sim.slack.store import (
    DEFAULT_USERS,
    RateLimit,
    StandinStore,
    StandinUser,
)
from sim.slack.webapi import api_route
from sim.slack.webhook import WebhookReceiver


def create_standin_app(
    bot_url: str,
    signing_secret: str,
    users: Sequence[StandinUser] | None = None,
    extra_routes: list[BaseRoute] | None = None,
    rate_limit: RateLimit | None = None,
    usergroups: Mapping[str, Sequence[str]] | None = None,
    *,
    app_token: str | None = None,
    socket_host: str = "127.0.0.1",
    socket_port: int = 0,
    ack_timeout: float = ACK_TIMEOUT_SECONDS,
) -> Starlette:
    """The stand-in app; its store is `app.state.standin`, its control `app.state.control`,
    its Socket Mode side `app.state.socket`, its files `app.state.files` and its webhook
    receiver `app.state.webhook`.

    `bot_url` is the bot's request URL (`.../slack/events`); it may be changed later via
    `app.state.control.bot_url` (handy when both ports are only known after binding).
    `app_token`, when given, is the only `xapp-` token `apps.connections.open` accepts; the
    WebSocket server listens on `socket_host:socket_port` (0: any free port).
    """
    store = StandinStore(users=users or DEFAULT_USERS, usergroups=usergroups, rate_limit=rate_limit)
    hub = SocketHub(app_token=app_token, host=socket_host, port=socket_port,
                    ack_timeout=ack_timeout)
    control = Control(store, bot_url, signing_secret, hub)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await hub.close()
        if control.client is not None:
            await control.client.aclose()

    files, webhook = FileApi(store), WebhookReceiver()
    routes: list[BaseRoute] = [
        *files.routes(),  # before the generic `/api/{method}`
        *webhook.routes(),
        api_route(store, hub),
        Route("/_standin/state", control.state, methods=["GET"]),
        Route("/_standin/calls", control.calls, methods=["GET"]),
        Route("/_standin/command", control.command, methods=["POST"]),
        Route("/_standin/click", control.click, methods=["POST"]),
        Route("/_standin/home_opened", control.home_opened, methods=["POST"]),
        Route("/_standin/home", control.home, methods=["GET"]),
        Route("/_standin/response/{rid}", control.response, methods=["POST"]),
        Route("/_standin/socket", control.socket_state, methods=["GET"]),
        Route("/_standin/socket/drop", control.socket_drop, methods=["POST"]),
        *(extra_routes or []),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.standin = store
    app.state.control = control
    app.state.socket = hub
    app.state.files = files
    app.state.webhook = webhook
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
    socket_port: int = 0,
) -> None:
    """Serve the stand-in under uvicorn until interrupted (blocking); the Socket Mode
    WebSocket listens on the same host, on `socket_port`."""
    app = create_standin_app(
        bot_url, signing_secret, extra_routes=extra_routes, rate_limit=rate_limit,
        socket_host=host, socket_port=socket_port,
    )
    uvicorn.run(app, host=host, port=port, log_level=log_level)


def main(argv: list[str] | None = None) -> int:
    """`python -m sim.slack.standin [--host H] [--port P] [--bot-url U] [--signing-secret S]`."""
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
    p.add_argument(
        "--socket-port", type=int, default=0, help="Socket Mode WebSocket port (0: any free)"
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
        socket_port=a.socket_port,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
