"""The Bolt app (`/pps`, the gate buttons, the App Home tab) and the Starlette app that
serves it.

HTTP mode: `POST /slack/events` through Bolt's Starlette adapter, next to `GET /healthz`
(200 when Redis answers, 503 otherwise) and `GET /metrics`. Bolt verifies signatures
(401 on failure) and answers `ssl_check` before any listener runs.

The command listener acks with the reply itself (ephemeral), so the ack path is: parse,
authorize from the cache, a few Redis round trips in `JobService`, render. The auth.test
Bolt needs is made once at start-up (`StartupAuth.load`), not on a user's request.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Lifespan

from bot import metrics
from bot.notifier.home import HomePublisher
from bot.origin_guard import origin_middleware
from bot.render.commands import render_reply
from bot.report_upload import ReportUploader
from bot.request_limits import BodyLimit
from bot.slack_api import Pacer
from handlers.actions import GATE_ACTIONS, ActionRunner, Click, ClickOutcome
from handlers.auth import Authorizer
from handlers.commands import Caller, CommandRunner
from handlers.grammar import USAGE_LINES
from handlers.origin import OriginPolicy
from handlers.replies import Failed, Refused
from jobs.config.clock import Clock, SystemClock
from jobs.config.inventory import Inventory
from jobs.config.log import get_logger
from jobs.config.settings import Settings
from jobs.fleet.view import FleetView
from jobs.service import JobService
from jobs.store.fleet import FleetStore
from jobs.store.home_viewers import HomeViewers
from jobs.store.job_store import JobStore
from jobs.store.keys import Keys

HEALTH_TIMEOUT_SECONDS = 2.0
# Bolt warns that SLACK_BOT_TOKEN "will be unused/ignored" when given a client and
# `authorize`; here that is the design (the token reaches Bolt through `authorize`).
_TOKEN_NOTICES = ("will be unused", "will be ignored")
_VERBS = frozenset(u.split()[1] for u in USAGE_LINES)

log = get_logger(__name__)


class _DropTokenNotices(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not any(n in record.getMessage() for n in _TOKEN_NOTICES)


def _bolt_logger() -> logging.Logger:
    logger = logging.getLogger("ppsbot.bolt")
    if not any(isinstance(f, _DropTokenNotices) for f in logger.filters):
        logger.addFilter(_DropTokenNotices())
    return logger


class StartupAuth:
    """Bolt's `authorize`: the answer of one auth.test, fetched at start-up and kept.

    A request never waits for Slack here: until auth.test has answered (Slack unreachable
    at start-up), requests are authorized with the bot token alone and a retry of
    auth.test runs in the background.
    """

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self._result: AuthorizeResult | None = None
        self.team_url: str | None = None  # the workspace's URL, for links to messages
        self._lock = asyncio.Lock()
        self._retry: asyncio.Task[None] | None = None

    async def load(self) -> AuthorizeResult:
        """Call auth.test once (later calls return the kept answer)."""
        async with self._lock:
            if self._result is None:
                resp = await self.client.auth_test()
                url = resp.get("url")
                self.team_url = url if isinstance(url, str) and url.startswith("http") else None
                self._result = AuthorizeResult.from_auth_test_response(
                    auth_test_response=resp, bot_token=self.client.token
                )
            return self._result

    @property
    def team_id(self) -> str | None:
        """The installed workspace, once auth.test has answered."""
        return self._result.team_id if self._result is not None else None

    async def _load_quietly(self) -> None:
        try:
            await self.load()
        except Exception as exc:
            log.warning("auth_test_failed", error=repr(exc))

    def authorize_fn(self) -> Callable[..., Awaitable[AuthorizeResult]]:
        async def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
            if self._result is not None:
                return self._result
            if self._retry is None or self._retry.done():
                self._retry = asyncio.create_task(self._load_quietly())
            return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id,
                                   bot_token=self.client.token)

        return authorize


@dataclass
class SlackBot:
    """The Bolt app and the pieces the server wires around it."""

    app: AsyncApp
    auth: StartupAuth
    authorizer: Authorizer
    commands: CommandRunner
    actions: ActionRunner
    home: HomePublisher


def delivery_id(*parts: str) -> str:
    """A short fixed-size key for one click delivery (the button value may be long)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def _verb(text: str) -> str:
    words = text.split()
    verb = words[0].lower() if words else "help"
    return verb if verb in _VERBS else "other"


def create_app(
    settings: Settings,
    service: JobService,
    redis: aioredis.Redis,
    inventory: Inventory,
    client: AsyncWebClient,
    *,
    clock: Clock | None = None,
    keys: Keys | None = None,
) -> SlackBot:
    """Build the Bolt app: `/pps`, the `pps_approve` / `pps_reject` / `pps_confirm` buttons and
    the App Home tab (`app_home_opened`), behind the origin check (installed workspace,
    `PPS_ALLOWED_CHANNELS`)."""
    clock = clock or SystemClock()
    keys = keys or Keys(settings.PPS_REDIS_PREFIX)
    auth = StartupAuth(client)

    async def lookup(group: str) -> list[str]:
        # slack_sdk would GET with a query string. Slack takes any form; a minimal stand-in
        # may answer POST only, or read only the body, or only the query: POST, both.
        args = {"usergroup": group}
        resp = await client.api_call("usergroups.users.list", http_verb="POST",
                                     params=args, data=args)
        return [str(u) for u in resp.get("users") or []]

    authorizer = Authorizer(settings, redis, keys, lookup, clock)
    fleet_store = FleetStore(redis, keys)
    fleet = FleetView(fleet_store, service, inventory, clock, settings.PPS_FLEET_POLL_SECONDS)
    commands = CommandRunner(service, inventory, settings, authorizer, clock, fleet=fleet)
    actions = ActionRunner(service, inventory, authorizer, redis, keys)
    pacer = Pacer(clock)
    home = HomePublisher(HomeViewers(redis, keys), fleet, fleet_store.changes, client, pacer,
                         clock, lambda: auth.team_url)
    # Bolt gets a token-less twin of the client: the token comes from `authorize`.
    bolt_client = AsyncWebClient(base_url=client.base_url, timeout=client.timeout,
                                 retry_handlers=client.retry_handlers)
    app = AsyncApp(
        client=bolt_client,
        signing_secret=settings.SLACK_SIGNING_SECRET.get_secret_value(),
        authorize=auth.authorize_fn(),
        name="ppsbot",
        logger=_bolt_logger(),
        # The command listener is quick and acks with its reply, so answer as soon as it
        # returns (without this Bolt polls for the ack every 10 ms); clicks ack at once
        # and do their work in a lazy listener.
        process_before_response=True,
    )
    commands.reports = ReportUploader(JobStore(redis, keys, clock), client, pacer, redis, keys,
                                      clock).request

    async def on_command(ack: Callable[..., Awaitable[Any]], command: dict[str, Any]) -> None:
        started = time.perf_counter()
        text = str(command.get("text") or "")
        caller = Caller(user_id=str(command.get("user_id") or ""),
                        channel_id=str(command.get("channel_id") or ""),
                        trigger_id=command.get("trigger_id") or None)
        try:
            reply = await commands.run(text, caller)
            msg = render_reply(reply, auth.team_url)
        except Exception:  # Redis down or a bug: a message, never a traceback or a 5xx
            ref = secrets.token_hex(4)
            log.exception("command_failed", ref=ref, user=caller.user_id)
            reply = Failed(ref)
            msg = render_reply(reply)
        await ack(text=msg.text, blocks=msg.blocks, response_type="ephemeral")
        metrics.ACK_SECONDS.observe(time.perf_counter() - started)
        metrics.COMMANDS.labels(_verb(text), type(reply).__name__.lower()).inc()

    async def ack_click(ack: Callable[..., Awaitable[Any]]) -> None:
        await ack()

    async def on_action(body: dict[str, Any], action: dict[str, Any]) -> None:
        user = str((body.get("user") or {}).get("id") or "")
        channel = str((body.get("channel") or {}).get("id")
                      or (body.get("container") or {}).get("channel_id") or "")
        # What identifies one delivery of one click: a re-delivery repeats all of it, while
        # a later click differs in the button or message even if a client reuses action_ts.
        stamp = action.get("action_ts") or body.get("trigger_id") or secrets.token_hex(8)
        message_ts = (body.get("container") or {}).get("message_ts") or ""
        click = Click(action_id=str(action.get("action_id")), value=str(action.get("value", "")),
                      user_id=user, channel_id=channel, delivery_id=delivery_id(
                          stamp, user, str(action.get("action_id")), str(message_ts),
                          str(action.get("value", ""))))
        try:
            outcome = await actions.run(click)
        except Exception:
            ref = secrets.token_hex(4)
            log.exception("action_failed", ref=ref, user=user)
            outcome = ClickOutcome(refusal=f"Something went wrong on my side (ref {ref}); "
                                           "check the job's card before trying again.")
        result = "duplicate" if outcome.duplicate else "refused" if outcome.refusal else "ok"
        metrics.ACTIONS.labels(click.action_id, result).inc()
        if outcome.refusal and channel and user:
            await post_refusal(channel, user, (body.get("message") or {}).get("thread_ts"),
                               outcome.refusal)

    async def post_refusal(channel: str, user: str, thread_ts: str | None, text: str) -> None:
        msg = render_reply(Refused(text))
        try:
            await pacer.call("chat.postEphemeral", client.chat_postEphemeral,
                             channel=channel, user=user, thread_ts=thread_ts, **msg.kwargs())
        except Exception as exc:
            log.warning("refusal_not_delivered", user=user, error=repr(exc))

    async def on_home_opened(event: dict[str, Any]) -> None:
        # Slack sends the event for the Messages tab too; only the Home tab is ours.
        user = str(event.get("user") or "")
        if event.get("tab", "home") != "home" or not user:
            return
        try:
            await home.opened(user)
        except Exception as exc:  # Redis down: the next open publishes
            log.warning("home_open_not_recorded", user=user, error=repr(exc))

    async def on_error(error: Exception, context: AsyncBoltContext) -> None:
        log.error("bolt_error", error=repr(error))

    app.use(origin_middleware(OriginPolicy(settings, lambda: auth.team_id), post_refusal))
    app.command("/pps")(on_command)
    app.event("app_home_opened")(on_home_opened)
    for action_id in GATE_ACTIONS:
        app.action(action_id)(ack=ack_click, lazy=[on_action])
    app.error(on_error)
    return SlackBot(app, auth, authorizer, commands, actions, home)


def create_web_app(
    bot: SlackBot | None,
    redis: aioredis.Redis,
    lifespan: Lifespan[Starlette] | None = None,
    workers: Callable[[], Awaitable[int]] | None = None,
) -> Starlette:
    """The HTTP server: `/slack/events` (when `bot` is given), `/healthz`, `/metrics`.

    Every request body is bounded (`BodyLimit`) before a route sees it. `workers` counts
    the running workers: reported by both, never a reason for a 503 (the bot itself is
    healthy without them)."""

    async def count_workers() -> int | None:
        if workers is None:
            return None
        try:
            return await asyncio.wait_for(workers(), HEALTH_TIMEOUT_SECONDS)
        except Exception:
            return None

    async def healthz(request: Request) -> JSONResponse:
        try:
            await asyncio.wait_for(redis.ping(), HEALTH_TIMEOUT_SECONDS)
        except Exception as exc:
            return JSONResponse({"ok": False, "redis": f"unavailable ({type(exc).__name__})"},
                                status_code=503)
        body: dict[str, Any] = {"ok": True, "redis": "ok"}
        if (alive := await count_workers()) is not None:
            body["workers"] = alive
        return JSONResponse(body)

    async def metrics_endpoint(request: Request) -> Response:
        if (alive := await count_workers()) is not None:
            metrics.WORKERS_ALIVE.set(alive)
        body, ctype = metrics.render()
        return Response(body, media_type=ctype)

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
    if bot is not None:
        handler = AsyncSlackRequestHandler(bot.app)

        async def events(request: Request) -> Response:
            # Never a 5xx to Slack. Bolt's signature check raises on a timestamp that is not
            # an integer (answered 500): such a request fails the check, so 401 it here.
            stamp = request.headers.get("x-slack-request-timestamp")
            if stamp is not None and not stamp.strip().isdigit():
                return JSONResponse({"error": "invalid request"}, status_code=401)
            try:
                response = await handler.handle(request)
            except Exception as exc:
                # Bolt parses the body before it checks the signature: a body it cannot
                # parse (`payload={...` that is not JSON) raises.
                log.warning("slack_request_unreadable", error=type(exc).__name__)
                return JSONResponse({"ok": False, "error": "unreadable request"},
                                    status_code=400)
            if response.status_code >= 500:  # Bolt caught an error (logged by on_error)
                return JSONResponse({"ok": False, "error": "request failed"}, status_code=400)
            return response

        routes.append(Route("/slack/events", events, methods=["POST"]))
    return Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(BodyLimit)])
