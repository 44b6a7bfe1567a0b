"""The Web API client (base URL from `SLACK_API_URL`, rate-limit retries) and call pacing.

slack_sdk retries only connection errors by default; the client here also retries a 429
after its `Retry-After`. `Pacer` remembers a `Retry-After` that outlived those retries and
holds every later call until it has elapsed, so no call is made before Slack allows it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.metrics import SLACK_CALLS
from jobs.config.clock import Clock
from jobs.config.settings import Settings

TIMEOUT_SECONDS = 10
RATE_LIMIT_RETRIES = 2
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
    """An AsyncWebClient for the bot token, at `SLACK_API_URL`, retrying 429s and resets."""
    return AsyncWebClient(
        token=settings.SLACK_BOT_TOKEN.get_secret_value() or None,
        base_url=settings.SLACK_API_URL,
        timeout=TIMEOUT_SECONDS,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
        ],
    )


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


class Pacer:
    """Runs Web API calls no earlier than the last `Retry-After` allows, and counts them."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.not_before = 0.0  # monotonic seconds

    async def wait(self) -> None:
        delay = self.not_before - self.clock.monotonic()
        if delay > 0:
            await self.clock.sleep(delay)

    async def call(
        self, method: str, fn: Callable[..., Awaitable[AsyncSlackResponse]], **kwargs: Any
    ) -> AsyncSlackResponse:
        """`await fn(**kwargs)` after any pending Retry-After; remembers a new one."""
        await self.wait()
        try:
            resp = await fn(**kwargs)
        except SlackApiError as exc:
            delay = retry_after(exc)
            if delay is not None:
                self.not_before = max(self.not_before, self.clock.monotonic() + delay)
            SLACK_CALLS.labels(method, exc.response.get("error") or "error").inc()
            raise
        except Exception:
            SLACK_CALLS.labels(method, "network").inc()
            raise
        SLACK_CALLS.labels(method, "ok").inc()
        return resp
