"""The channel page: a browser view of the Slack stand-in (messages, buttons, a `/pps` box).

`routes()` returns Starlette routes mounted into the stand-in through its `extra_routes`:
`GET /` serves the page (`?tab=home` opens the app's Home tab), `/_page/*` its static assets,
`GET /archives/<channel>/p<ts>` (a Slack message link, as the bot builds them from the
workspace URL auth.test answers) opens the page on that message. The page itself is plain HTML/JS
(sim/slack/static/) talking to the stand-in's JSON control API (`/_standin/state`, `/command`,
`/click`), so it works the same in the demo, in docker compose and in the browser test.

`python -m sim.slack.channel_page` runs the stand-in with the page under uvicorn (the demo and
the compose `demo` profile use it). An open page keeps a long-poll request waiting on the
stand-in; on shutdown those are answered at once (`PageServer`), so Ctrl-C never waits for
them, and anything else still running after `GRACEFUL_SECONDS` is cancelled.
"""

from __future__ import annotations

import argparse
import html
import os
import re
import socket
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import uvicorn
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).with_name("static")
STATIC_PREFIX = "/_page"
DEFAULT_CHANNEL = "C0PPSDEMO"
DEFAULT_USER = "U_REQUESTER"
DEFAULT_TITLE = "#pps-upgrades"
_ARCHIVE = re.compile(r"^[A-Z0-9_]{1,40}$"), re.compile(r"^\d{7,}$")

GRACEFUL_SECONDS = 2


class PageServer(uvicorn.Server):
    """uvicorn for the stand-in: on shutdown it answers the page's waiting long-polls."""

    def __init__(self, config: uvicorn.Config, store: Any) -> None:
        super().__init__(config)
        self.store = store

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # Waking the waiters only schedules them: they answer after uvicorn has stopped
        # listening and marked every connection to close after its response (it does both
        # before it first yields), so a page cannot slip in another long-poll.
        self.store.touch()
        await super().shutdown(sockets)


def render_index(channel: str, user: str, title: str) -> str:
    """The page's HTML with its defaults filled in (escaped)."""
    text = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    for name, value in (("CHANNEL", channel), ("USER", user), ("TITLE", title)):
        text = text.replace("{{" + name + "}}", html.escape(value, quote=True))
    return text


def routes(
    channel: str = DEFAULT_CHANNEL, user: str = DEFAULT_USER, title: str = DEFAULT_TITLE
) -> list[BaseRoute]:
    """`GET /` (the page) and `/_page/*` (its assets); `channel`/`user` are the defaults."""
    page = render_index(channel, user, title)

    async def index(_request: Request) -> Response:
        # no-store: the page is tiny and a stale copy after an upgrade of the demo confuses.
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    async def archive(request: Request) -> Response:
        # Slack's message links: /archives/C123/p1700000000123456 is ts 1700000000.123456.
        ch, p = request.path_params["channel"], request.path_params["p"]
        if not (_ARCHIVE[0].match(ch) and _ARCHIVE[1].match(p)):
            return HTMLResponse("not a message link", status_code=404)
        query = urlencode({"channel": ch, "ts": f"{p[:-6]}.{p[-6:]}"})
        return RedirectResponse(f"/?{query}", status_code=302)

    return [
        Route("/", index, methods=["GET"], name="channel_page"),
        Route("/archives/{channel}/p{p}", archive, methods=["GET"]),
        Mount(
            STATIC_PREFIX,
            app=StaticFiles(directory=str(STATIC_DIR)),
            name="channel_page_static",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    """Run the Slack stand-in with the channel page (signing secret from the environment)."""
    p = argparse.ArgumentParser(prog="python -m sim.slack.channel_page", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--bot-url", required=True, help="the bot's URL, e.g. http://127.0.0.1:3000")
    p.add_argument("--channel", default=DEFAULT_CHANNEL, help="channel the page opens on")
    p.add_argument("--title", default=DEFAULT_TITLE)
    p.add_argument(
        "--rate-limit",
        type=int,
        default=0,
        help="answer 429 above this many calls per second per method, per channel for "
        "chat.postMessage (0: off)",
    )
    args = p.parse_args(argv)
    secret = os.environ.get("SLACK_SIGNING_SECRET", "")
    if not secret:
        print("SLACK_SIGNING_SECRET must be set (the bot's signing secret)", file=sys.stderr)
        return 2

    from sim.slack.standin import create_standin_app
    from sim.slack.store import RateLimit

    app = create_standin_app(
        args.bot_url,
        secret,
        None,
        extra_routes=routes(channel=args.channel, title=args.title),
        rate_limit=RateLimit(limit=args.rate_limit) if args.rate_limit > 0 else None,
    )
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning",
                            timeout_graceful_shutdown=GRACEFUL_SECONDS)
    PageServer(config, app.state.standin).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
