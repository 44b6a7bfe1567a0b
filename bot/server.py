"""`ppsbot bot`: the Slack app (HTTP on $PORT, or Socket Mode) plus the notifier.

`build()` wires one process's parts; `BotRuntime.lifespan` starts and stops the background
work (auth.test, the notifier, the user-group refresh, Socket Mode) with the web server,
so tests run exactly what production runs, under uvicorn on any port.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
import redis.asyncio as aioredis
import uvicorn
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette

from bot.app import SlackBot, create_app, create_web_app
from bot.notifier.dataloss_alert import DataLossAlert
from bot.notifier.home import HOME_EVENTS
from bot.notifier.loop import Notifier, unique_consumer
from bot.slack_api import make_client
from handlers.auth import GROUP_FRESH_SECONDS
from handlers.origin import origin_problems
from jobs.config.clock import Clock, SystemClock
from jobs.config.inventory import Inventory, InventoryError, load_inventory, log_warnings
from jobs.config.log import configure_logging, get_logger
from jobs.config.settings import Settings, get_settings
from jobs.service import JobService
from jobs.store.dataloss import DataLossGuard
from jobs.store.keys import Keys
from jobs.store.redis_client import make_redis
from jobs.store.wiring import redis_service

log = get_logger(__name__)
STOP_GRACE_SECONDS = 5.0  # how long background work may take to stop on shutdown

# apps.connections.open errors that retrying cannot fix: Socket Mode would retry them
# forever (every 10 s) and the bot would never finish starting.
REFUSED_APP_TOKEN = frozenset({
    "invalid_auth", "not_authed", "not_allowed_token_type", "token_revoked", "token_expired",
    "account_inactive", "missing_scope", "invalid_token",
})


@dataclass
class BotRuntime:
    """One bot process: Bolt app, notifier, web app and their background tasks."""

    settings: Settings
    redis: aioredis.Redis
    inventory: Inventory
    client: AsyncWebClient
    service: JobService
    bot: SlackBot
    notifier: Notifier | None
    alert: DataLossAlert | None = None
    web: Starlette = field(init=False)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        http_mode = not self.socket_mode
        self.web = create_web_app(self.bot if http_mode else None, self.redis, self.lifespan,
                                  workers=self.service.workers_alive)

    @property
    def socket_mode(self) -> bool:
        token = self.settings.SLACK_APP_TOKEN
        return token is not None and bool(token.get_secret_value())

    async def _refresh_groups(self) -> None:
        while True:
            await self.bot.authorizer.refresh_all(self.inventory.clusters.values())
            await asyncio.sleep(GROUP_FRESH_SECONDS / 2)

    def _share_session(self) -> aiohttp.ClientSession:
        """One HTTP session (keep-alive connections) for every Slack Web API call.

        Without it slack_sdk opens a session, and a TLS connection, per call: a profile of the
        bot under load put 10% of its busy time in creating sessions."""
        timeout = aiohttp.ClientTimeout(total=self.client.timeout)
        session = aiohttp.ClientSession(timeout=timeout)
        # Only our client: Bolt copies its own per request, and a session cannot be copied.
        self.client.session = session
        return session

    async def _close_session(self, session: aiohttp.ClientSession) -> None:
        if self.client.session is session:
            self.client.session = None
        await session.close()

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        """Start background work with the server; stop it on shutdown."""
        session = self._share_session()
        try:
            async with self._background():
                yield
        finally:
            await self._close_session(session)

    @asynccontextmanager
    async def _background(self) -> AsyncIterator[None]:
        try:
            await self.bot.auth.load()
        except Exception as exc:  # Slack unreachable: requests go on with the token alone
            log.warning("auth_test_failed", error=repr(exc))
        if self.notifier is not None:
            self.tasks.append(asyncio.create_task(self.notifier.run(), name="notifier"))
        self.tasks.append(asyncio.create_task(self._refresh_groups(), name="group-refresh"))
        self.tasks.append(asyncio.create_task(self.bot.home.run(), name="app-home"))
        if self.alert is not None:
            self.tasks.append(asyncio.create_task(self.alert.run(), name="dataloss-alert"))
        socket_handler = None
        if self.socket_mode:
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            token = self.settings.SLACK_APP_TOKEN
            assert token is not None
            socket_handler = AsyncSocketModeHandler(self.bot.app, token.get_secret_value())
            await socket_handler.connect_async()  # type: ignore[no-untyped-call]
        log.info("bot_started", mode="socket" if self.socket_mode else "http")
        try:
            yield
        finally:
            if socket_handler is not None:
                await socket_handler.close_async()  # type: ignore[no-untyped-call]
            if self.notifier is not None:
                self.notifier.stop()
            self.bot.home.stop()
            for t in self.tasks:
                if t.get_name() != "notifier":
                    t.cancel()
            # The notifier finishes the batch in hand, but a shutdown is bounded: what it has
            # not acknowledged stays pending and is handled again at the next start.
            _, slow = await asyncio.wait(self.tasks, timeout=STOP_GRACE_SECONDS) if self.tasks \
                else (set(), set())
            for t in slow:
                log.warning("bot_task_slow_to_stop", task=t.get_name())
                t.cancel()
            for t in self.tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await t
            self.tasks.clear()


def build(
    settings: Settings,
    redis: aioredis.Redis,
    inventory: Inventory,
    client: AsyncWebClient | None = None,
    *,
    clock: Clock | None = None,
    consumer: str | None = None,
    notifier: bool = True,
) -> BotRuntime:
    """Wire a bot process (the notifier's consumer name defaults to one of its own)."""
    clock = clock or SystemClock()
    keys = Keys(settings.PPS_REDIS_PREFIX)
    client = client or make_client(settings)
    service = redis_service(redis, settings, inventory, clock, keys)
    bot = create_app(settings, service, redis, inventory, client, clock=clock, keys=keys)
    note = alert = None
    if notifier:
        note = Notifier(redis, service, client, keys, clock, consumer or unique_consumer(),
                        on_change=bot.home.job_changed, change_kinds=HOME_EVENTS)
        guard = DataLossGuard(redis, keys, clock)
        alert = DataLossAlert(redis, client, guard, keys, settings, inventory,
                              every=min(5.0, settings.PPS_LEASE_SECONDS))
    return BotRuntime(settings, redis, inventory, client, service, bot, note, alert)


def _config_problems(settings: Settings) -> list[str]:
    problems = []
    if not settings.SLACK_BOT_TOKEN.get_secret_value():
        problems.append("SLACK_BOT_TOKEN is not set (the bot's xoxb- token)")
    app_token = settings.SLACK_APP_TOKEN
    http_mode = app_token is None or not app_token.get_secret_value()
    if http_mode and not settings.SLACK_SIGNING_SECRET.get_secret_value():
        problems.append("SLACK_SIGNING_SECRET is not set (needed in HTTP mode)")
    return problems


async def app_token_problem(client: AsyncWebClient, token: str) -> str | None:
    """Why Slack refuses the Socket Mode app token for good, or None (accepted, or Slack
    unreachable for now: Socket Mode keeps trying then)."""
    try:
        await client.apps_connections_open(app_token=token)
    except SlackApiError as exc:
        error = str(exc.response.get("error", ""))
        if error in REFUSED_APP_TOKEN:
            return (f"SLACK_APP_TOKEN was refused by Slack ({error}): use the app-level token "
                    "(xapp-...) with the connections:write scope, or unset it for HTTP mode")
    except Exception as exc:  # network trouble is not a verdict on the token
        log.warning("app_token_check_failed", error=type(exc).__name__)
    return None


async def _serve(settings: Settings, inventory: Inventory) -> int:
    redis = make_redis(settings.REDIS_URL)
    rt = build(settings, redis, inventory)
    if rt.socket_mode:
        assert settings.SLACK_APP_TOKEN is not None
        problem = await app_token_problem(rt.client, settings.SLACK_APP_TOKEN.get_secret_value())
        if problem is not None:
            await redis.aclose()
            print(f"ppsbot bot: cannot start:\n  {problem}", file=sys.stderr)
            return 2
    # No access log: one line per Slack request is noise next to the metrics; uvicorn's
    # own few lines go through the logging set up by configure_logging.
    config = uvicorn.Config(rt.web, host=os.environ.get("HOST", "0.0.0.0"), port=settings.PORT,
                            log_level=settings.LOG_LEVEL.lower(), lifespan="on",
                            access_log=False, log_config=None)
    try:
        await uvicorn.Server(config).serve()
    finally:
        await redis.aclose()
    return 0


def main() -> int:
    """Entry point of `ppsbot bot`; returns the process exit code."""
    settings = get_settings()
    configure_logging(settings.LOG_LEVEL, settings.LOG_FORMAT)
    problems = _config_problems(settings)
    try:
        # The bot never reads firmware files nor talks to appliances: the worker checks
        # those, and the bot's environment need not hold appliance credentials.
        inventory = load_inventory(settings.PPS_INVENTORY, check_files=False, check_env=False)
    except InventoryError as exc:
        problems.extend(exc.problems)
    if problems:
        print("ppsbot bot: cannot start:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 2
    log_warnings(inventory)
    for problem in origin_problems(settings, inventory):
        log.warning("settings_warning", warning=problem)
    return asyncio.run(_serve(settings, inventory))
