"""A read-only follower of the `events` stream with a consumer group of its own.

The workers' metrics read job events through the group `metrics` (`Keys.events`), apart
from the notifier's group: each event reaches one worker of the group, read with `NOACK`
(no pending list: an event read by a worker that dies right then is not counted, never
counted twice). The group starts at the end of the stream when first made, so a new
deployment does not count the history.
"""

from __future__ import annotations

from typing import cast

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from jobs.rules.events import Event
from jobs.store.keys import Keys

METRICS_GROUP = "metrics"


class EventFeed:
    """New events for one consumer of `group`."""

    def __init__(
        self, redis: aioredis.Redis, keys: Keys, consumer: str, group: str = METRICS_GROUP
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.consumer = consumer
        self.group = group
        self._ready = False

    async def ensure_group(self) -> None:
        """Make the group at the stream's end (idempotent)."""
        try:
            await self.redis.xgroup_create(self.keys.events, self.group, id="$", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._ready = True

    async def read(self, count: int = 200) -> list[Event]:
        """Events not yet read by the group (none blocking); malformed entries are skipped."""
        if not self._ready:
            await self.ensure_group()
        try:
            res = await self.redis.xreadgroup(self.group, self.consumer, {self.keys.events: ">"},
                                              count=count, noack=True)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._ready = False  # Redis lost the group (its data): make it again next time
            return []
        entries = cast(list[tuple[str, list[tuple[str, dict[str, str]]]]], res or [])
        out: list[Event] = []
        for _, items in entries:
            for _, fields in items:
                try:
                    out.append(Event.from_fields(fields))
                except (KeyError, ValueError):
                    continue
        return out
