"""The App Home tab: published when a user opens it, republished for recent viewers when
a job changes state or a fleet poll sees a change.

Within Slack's limits for `views.publish`: every publish goes through the `Pacer` (no call
before a `Retry-After` elapsed), and each user gets at most one publish per `min_interval`
seconds across all bot replicas (`HomeViewers.take_slot`); what changes meanwhile is
coalesced into the next publish, which renders the newest facts. The view is the same for
every viewer, so it is rendered once per round.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.render.home import home_view
from bot.slack_api import Pacer, is_transient
from jobs.config.clock import Clock
from jobs.config.log import get_logger
from jobs.fleet.view import FleetView
from jobs.rules.events import EventKind
from jobs.store.home_viewers import HomeViewers
from jobs.store.redis_client import BACKOFF_MAX, backoff

MIN_INTERVAL_SECONDS = 5.0  # at most one publish per user per this long
RECENT_SECONDS = 24 * 3600  # who opened the tab within this long gets republished
CHECK_SECONDS = 5.0  # how often the fleet's change counter is read (one GET)
# Events after which the Home tab may show something else (state, step, a gate, the end).
HOME_EVENTS = frozenset({
    EventKind.CREATED, EventKind.STEP_STARTED, EventKind.STATE, EventKind.GATE_OPENED,
    EventKind.GATE_DECIDED, EventKind.LOGINS_DISABLED_ALERT, EventKind.FINISHED,
})

log = get_logger(__name__)


class HomePublisher:
    """Publishes the Home tab; `run()` in the background, `opened` / `job_changed` wake it."""

    def __init__(
        self,
        viewers: HomeViewers,
        fleet: FleetView,
        fleet_changes: Callable[[], Awaitable[int]],
        client: AsyncWebClient,
        pacer: Pacer,
        clock: Clock,
        team_url: Callable[[], str | None],
        *,
        min_interval: float = MIN_INTERVAL_SECONDS,
        recent_seconds: float = RECENT_SECONDS,
        check_seconds: float = CHECK_SECONDS,
    ) -> None:
        self.viewers = viewers
        self.fleet = fleet
        self.fleet_changes = fleet_changes
        self.client = client
        self.pacer = pacer
        self.clock = clock
        self.team_url = team_url
        self.min_interval = min_interval
        self.recent_seconds = recent_seconds
        self.check_seconds = check_seconds
        self.published = 0  # views published by this process (tests, logs)
        self._pending: set[str] = set()
        self._everyone = False
        self._seen_changes: int | None = None
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()

    async def opened(self, user: str) -> None:
        """`user` opened the Home tab: remember them and publish to them soon."""
        await self.viewers.opened(user, self.clock.now())
        self._pending.add(user)
        self._wake.set()

    def job_changed(self) -> None:
        """A job changed state: republish for everyone who looked recently."""
        self._everyone = True
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    async def run(self) -> None:
        """Publish what is due until `stop()`; Redis or Slack trouble pauses, never ends it."""
        failures = 0
        while not self._stop.is_set():
            self._wake.clear()
            try:
                delay = await self.flush()
                failures = 0
            except Exception as exc:
                failures += 1
                if failures == 1:
                    log.warning("home_publish_failing", error=repr(exc))
                delay = backoff(failures, BACKOFF_MAX)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def flush(self) -> float:
        """Publish to every pending user whose slot is free; seconds until the next look."""
        changes = await self.fleet_changes()
        if self._seen_changes is not None and changes != self._seen_changes:
            self._everyone = True
        self._seen_changes = changes
        if self._everyone:
            self._everyone = False
            since = self.clock.now() - self.recent_seconds
            self._pending.update(await self.viewers.since(since))
        next_look = self.check_seconds
        view: dict[str, Any] | None = None
        for user in sorted(self._pending):
            if self._stop.is_set():
                break
            if not await self.viewers.take_slot(user, self.min_interval):
                next_look = min(next_look, max(0.05, await self.viewers.slot_free_in(user)))
                continue
            if view is None:
                view = home_view(await self.fleet.facts(), self.team_url())
            if await self._publish(user, view):
                self._pending.discard(user)
            else:
                next_look = min(next_look, self.min_interval)
        return next_look

    async def _publish(self, user: str, view: dict[str, Any]) -> bool:
        """One views.publish; False when it should be tried again later."""
        try:
            await self.pacer.call("views.publish", self.client.views_publish,
                                  user_id=user, view=view)
        except Exception as exc:
            if is_transient(exc):
                log.info("home_publish_retry", user=user, error=repr(exc))
                return False
            log.error("home_publish_failed", user=user, error=repr(exc))
            return True  # Slack refused this view for good: do not repeat it
        self.published += 1
        return True
