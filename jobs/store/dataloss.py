"""Detect that Redis lost its data (restart without persistence, flush, failover to an
empty replica), so nobody is left locked out silently.

Every worker and bot process keeps a `DataLossGuard`. The first one writes the `epoch`
marker; each remembers the marker it saw and the active jobs of its last look. When the
marker is gone or replaced, the jobs in flight are gone too: `tick()` returns a `DataLoss`
naming the jobs last seen (cluster, step, whether user logins were disabled) so the caller
can log it loudly (worker) or post it to the channel (bot).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import cast

import redis.asyncio as aioredis

from jobs.config.clock import Clock
from jobs.store.keys import Keys

_FIELDS = ("cluster", "state", "step", "logins_disabled")


@dataclass(frozen=True)
class LostJob:
    job_id: str
    cluster: str
    state: str
    step: str
    logins_disabled: bool


@dataclass(frozen=True)
class DataLoss:
    """What was in flight when the data went, as this process last saw it."""

    jobs: tuple[LostJob, ...] = field(default_factory=tuple)

    @property
    def locked_out(self) -> tuple[LostJob, ...]:
        """Jobs whose clusters may still have user logins disabled."""
        return tuple(j for j in self.jobs if j.logins_disabled)

    def text(self) -> str:
        """One plain message for logs and Slack (ids and cluster names only)."""
        head = (
            "Redis lost its data: upgrade jobs in flight are gone and will not continue."
        )
        if not self.jobs:
            return head + " No job was in flight when this process last looked."
        lines = [head]
        for j in self.jobs:
            warn = " — USER LOGINS ARE DISABLED: enable them on the appliance" if (
                j.logins_disabled
            ) else ""
            lines.append(f"• {j.job_id} on {j.cluster} was {j.state} at {j.step}{warn}")
        lines.append("Check each cluster's user-login permission and builds by hand.")
        return "\n".join(lines)


class DataLossGuard:
    """Call `tick()` periodically (every few seconds); it costs two or three round trips."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, clock: Clock) -> None:
        self.redis = redis
        self.keys = keys
        self.clock = clock
        self._epoch: str | None = None
        self._last: tuple[LostJob, ...] = ()

    @property
    def epoch(self) -> str | None:
        """The marker this process saw last (after a loss: the new one)."""
        return self._epoch

    async def tick(self) -> DataLoss | None:
        """Look once; a `DataLoss` when the marker this process saw is gone or replaced."""
        current = cast(str | None, await self.redis.get(self.keys.epoch))
        lost: DataLoss | None = None
        if current is None:
            fresh = f"{self.clock.now():.3f}-{secrets.token_hex(4)}"
            await self.redis.set(self.keys.epoch, fresh, nx=True)
            current = cast(str | None, await self.redis.get(self.keys.epoch))
        if self._epoch is not None and current != self._epoch:
            lost = DataLoss(self._last)
        self._epoch = current
        self._last = await self._active()
        return lost

    async def _active(self) -> tuple[LostJob, ...]:
        ids = sorted(cast(set[str], await self.redis.smembers(self.keys.active)))
        if not ids:
            return ()
        pipe = self.redis.pipeline(transaction=False)
        for job_id in ids:
            pipe.hmget(self.keys.job(job_id), list(_FIELDS))
        rows = await pipe.execute()
        out = []
        for job_id, (cluster, state, step, disabled) in zip(ids, rows, strict=True):
            if cluster is None:
                continue
            out.append(LostJob(job_id, cluster, state or "", step or "", disabled == "1"))
        return tuple(out)
