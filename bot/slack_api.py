"""The Web API client (base URL from `SLACK_API_URL`, connection retries) and call pacing.

Slack limits `chat.postMessage` per channel and every other method per method. `Pacer`
keeps one bucket per such limit (`bucket`): a 429 holds only its own bucket until its
`Retry-After` has elapsed, and the call is retried then (`RATE_LIMIT_RETRIES` times), so a
rate-limited channel never delays posts to another channel nor card edits, and no call is
made before Slack allows it: one call per bucket is in flight at a time, so the next one
knows the last one's `Retry-After`. The 429 retries live here, not in slack_sdk's handler, which
would sleep inside one call while other calls of the same bucket went early.

A bucket that met a 429 is then paced for `PACE_HOLD_SECONDS`: its calls start at least
`pace_interval(method)` apart (Slack's documented rate: about one post per second per
channel; Tier 3, about 50 a minute, for chat.update), so a busy channel's posts stop
meeting a 429 and its one-second `Retry-After` on every other call. A bucket that never met
one is not paced at all: bursts Slack tolerates go out at once.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncConnectionErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.metrics import SLACK_CALLS
from jobs.config.clock import Clock
from jobs.config.settings import Settings

TIMEOUT_SECONDS = 10
RATE_LIMIT_RETRIES = 2  # 429s retried by `Pacer.call` after their Retry-After
PER_CHANNEL_METHODS = frozenset({"chat.postMessage"})  # Slack's limit is per channel
# After a 429, a bucket's calls start at least this far apart (seconds), for
# PACE_HOLD_SECONDS after its last 429: a little over Slack's rate, so that a call's transit
# jitter does not land it inside the previous call's second.
PACE_SECONDS = {"chat.postMessage": 1.05}  # about 1 per second per channel
PACE_SECONDS_OTHER = 1.25  # Tier 3 (chat.update, ...): about 50 a minute
PACE_HOLD_SECONDS = 60.0
# Slack error codes worth retrying for as long as they last.
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
# Slack error codes that say the same call will fail the same way again: never retried.
# Any other error code (one Slack added later, say) is retried a few times, then given up.
PERMANENT_ERRORS = frozenset({
    "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired",
    "missing_scope", "no_permission", "not_allowed_token_type", "invalid_arguments",
    "invalid_blocks", "invalid_blocks_format", "invalid_metadata_format",
    "invalid_metadata_schema", "metadata_too_large", "msg_too_long", "no_text",
    "channel_not_found", "not_in_channel", "is_archived", "restricted_action",
    "message_not_found", "cant_update_message", "edit_window_closed", "thread_not_found",
    "user_not_found", "user_not_in_channel", "unknown_method",
})


def make_client(settings: Settings) -> AsyncWebClient:
    """An AsyncWebClient for the bot token, at `SLACK_API_URL`, retrying resets (429s are
    retried by `Pacer`, per bucket)."""
    return AsyncWebClient(
        token=settings.SLACK_BOT_TOKEN.get_secret_value() or None,
        base_url=settings.SLACK_API_URL,
        timeout=TIMEOUT_SECONDS,
        retry_handlers=[AsyncConnectionErrorRetryHandler(max_retry_count=2)],
    )


def bucket(method: str, kwargs: Mapping[str, Any]) -> str:
    """The rate-limit bucket of a call: `chat.postMessage:<channel>`, else the method."""
    if method in PER_CHANNEL_METHODS:
        return f"{method}:{kwargs.get('channel', '')}"
    return method


def pace_interval(method: str) -> float:
    """Seconds between the starts of two calls of a paced bucket of `method`."""
    return PACE_SECONDS.get(method, PACE_SECONDS_OTHER)


def retry_after(exc: SlackApiError) -> float | None:
    """Seconds from a 429's `Retry-After` header, else None."""
    resp = exc.response
    if resp is None or resp.status_code != 429:
        return None
    headers = {k.lower(): v for k, v in (resp.headers or {}).items()}
    raw = headers.get("retry-after")
    if isinstance(raw, list):
        raw = raw[0] if raw else None
    try:
        return max(0.0, float(raw)) if raw is not None else 1.0
    except ValueError:
        return 1.0


def is_transient(exc: BaseException) -> bool:
    """Would the same call likely succeed later (rate limit, Slack or network trouble)?"""
    if isinstance(exc, SlackApiError):
        resp = exc.response
        status = resp.status_code if resp is not None else 0
        error = resp.get("error") if resp is not None else None
        return status == 429 or status >= 500 or error in TRANSIENT_ERRORS
    return isinstance(exc, OSError | TimeoutError) or type(exc).__module__.startswith("aiohttp")


def is_permanent(exc: BaseException) -> bool:
    """Does Slack's answer say this very call can never succeed (bad token, bad blocks, ...)?"""
    if not isinstance(exc, SlackApiError) or exc.response is None:
        return False
    return not is_transient(exc) and exc.response.get("error") in PERMANENT_ERRORS


class Turns:
    """One call in flight per bucket, in arrival order, except that urgent callers (an
    approval message) go before the others waiting: with Slack's limit of about one post
    per second per channel, 40 upgrades' thread replies held the approval messages of the
    same channels for up to 80 s in the benchmark with the stand-in's limits on."""

    def __init__(self) -> None:
        self.busy = False
        self.waiting: tuple[collections.deque[asyncio.Future[None]], ...] = (
            collections.deque(), collections.deque())  # (urgent, the others)

    async def acquire(self, urgent: bool = False) -> None:
        if not self.busy and not any(self.waiting):
            self.busy = True
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self.waiting[0 if urgent else 1]
        queue.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # granted, then cancelled: pass the turn on
            else:
                queue.remove(fut)
            raise

    def release(self) -> None:
        for queue in self.waiting:
            while queue:
                fut = queue.popleft()
                if not fut.done():
                    fut.set_result(None)  # the turn passes on; still busy
                    return
        self.busy = False


class Pacer:
    """Runs Web API calls no earlier than their bucket's last `Retry-After` allows (and, for
    a while after a 429, no closer together than Slack's rate), retries a 429 after it, and
    counts the calls."""

    def __init__(self, clock: Clock, retries: int = RATE_LIMIT_RETRIES) -> None:
        self.clock = clock
        self.retries = retries
        self.not_before: dict[str, float] = {}  # bucket -> monotonic seconds
        # Paced buckets: bucket -> (seconds between call starts, paced until (monotonic)).
        self.paced: dict[str, tuple[float, float]] = {}
        self.last_start: dict[str, float] = {}  # bucket -> when its last call started
        # One call in flight per bucket: the next waits for its answer, so a 429 it
        # brings (and its Retry-After) is known before the bucket is called again.
        self._turns: dict[str, Turns] = {}

    def delay(self, key: str) -> float:
        """Seconds until a call in bucket `key` may be made (0: now)."""
        now = self.clock.monotonic()
        at = self.not_before.get(key, 0.0)
        pace = self.paced.get(key)
        if pace is not None:
            interval, until = pace
            if now < until:
                at = max(at, self.last_start.get(key, 0.0) + interval)
            else:
                del self.paced[key]
        return max(0.0, at - now)

    async def wait(self, key: str) -> None:
        # Re-check after waking: a 429 of another call may have pushed the bucket further.
        while (delay := self.delay(key)) > 0:
            await self.clock.sleep(delay)

    async def call(
        self, method: str, fn: Callable[..., Awaitable[AsyncSlackResponse]], *,
        urgent: bool = False, **kwargs: Any
    ) -> AsyncSlackResponse:
        """`await fn(**kwargs)` once its bucket allows (`urgent`: before the calls waiting
        that are not); a 429 holds the bucket for its `Retry-After` and is retried after it
        (up to `retries` times, then raised)."""
        key = bucket(method, kwargs)
        for attempt in range(self.retries + 1):
            try:
                turn = self._turns.setdefault(key, Turns())
                await turn.acquire(urgent)
                try:
                    await self.wait(key)
                    self.last_start[key] = self.clock.monotonic()
                    resp = await fn(**kwargs)
                finally:
                    turn.release()
            except SlackApiError as exc:
                SLACK_CALLS.labels(method, exc.response.get("error") or "error").inc()
                delay = retry_after(exc)
                if delay is None:
                    raise
                now = self.clock.monotonic()
                self.not_before[key] = max(self.not_before.get(key, 0.0), now + delay)
                self.paced[key] = (pace_interval(method), now + PACE_HOLD_SECONDS)
                if attempt == self.retries:
                    raise
                continue
            except Exception:
                SLACK_CALLS.labels(method, "network").inc()
                raise
            SLACK_CALLS.labels(method, "ok").inc()
            return resp
        raise AssertionError("unreachable")  # pragma: no cover
