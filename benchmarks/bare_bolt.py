"""The baseline of item 1: a bare Bolt `AsyncApp` (request verification on, one command
listener acking a constant) under the same uvicorn settings as `ppsbot bot`.

    python -m benchmarks.bare_bolt --port 3999   # SLACK_SIGNING_SECRET from the environment
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def bare_app(secret: str) -> Starlette:
    """Bolt with signature verification and one listener; nothing else."""
    async def authorize(**_: Any) -> AuthorizeResult:
        # A constant, so no request goes to Slack (the bot's authorize is as local).
        return AuthorizeResult(enterprise_id=None, team_id="T_BENCH", bot_token="xoxb-bare",
                               bot_id="B_BARE", bot_user_id="U_BARE")

    app = AsyncApp(signing_secret=secret, authorize=authorize,
                   request_verification_enabled=True, process_before_response=True)

    @app.command("/pps")
    async def on_command(ack: Callable[..., Awaitable[Any]]) -> None:
        await ack(response_type="ephemeral", text="ok `J-0000`")

    handler = AsyncSlackRequestHandler(app)

    async def events(request: Request) -> Response:
        return await handler.handle(request)

    async def healthz(request: Request) -> Response:
        return Response("ok")

    return Starlette(routes=[Route("/slack/events", events, methods=["POST"]),
                             Route("/healthz", healthz, methods=["GET"])])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bare_bolt", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    a = p.parse_args(argv)
    # The bot's own server settings (bot/server.py): lifespan on, no access log.
    config = uvicorn.Config(bare_app(os.environ["SLACK_SIGNING_SECRET"]), host=a.host,
                            port=a.port, log_level="warning", lifespan="on",
                            access_log=False, log_config=None)
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
