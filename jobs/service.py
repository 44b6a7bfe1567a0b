"""`JobService`: the engine's entry points for the handlers and the notifier.

Handlers only call this (plus their own authorization): create, read, decide, abort.
Every method is atomic in Redis and raises a `jobs.errors.EngineError` subclass when it
refuses; a refusal changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from jobs.clock import Clock
from jobs.inventory import Inventory
from jobs.keys import Keys
from jobs.model import Job
from jobs.settings import Settings


@dataclass(frozen=True)
class UpgradeRequest:
    """What `/pps upgrade` asks for, already parsed and authorized."""

    cluster: str
    requester: str
    channel: str
    target: str | None = None  # None: the newest catalogue version
    at: float | None = None  # epoch seconds; None: start now
    dry_run: bool = False
    allow_downgrade: bool = False
    idempotency_key: str | None = None  # e.g. the Slack trigger_id


class JobService:
    """Facade over the Redis store. One instance per process is enough."""

    def __init__(
        self,
        redis: aioredis.Redis,
        settings: Settings,
        inventory: Inventory,
        clock: Clock,
        keys: Keys | None = None,
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.inventory = inventory
        self.clock = clock
        self.keys = keys or Keys(settings.PPS_REDIS_PREFIX)

    async def create_job(self, req: UpgradeRequest) -> tuple[Job, bool]:
        """Create and enqueue (or schedule) a job; `(job, created)`.

        The same idempotency key returns the existing job with `created=False`. Raises
        `UnknownCluster`, `ClusterBusy` (naming the running job and its requester), or
        `EngineError` for an unknown version.
        """
        raise NotImplementedError

    async def find(self, job_id: str) -> Job | None:
        raise NotImplementedError

    async def get(self, job_id: str) -> Job:
        """The job, or `UnknownJob`."""
        raise NotImplementedError

    async def active_for_cluster(self, cluster: str) -> Job | None:
        raise NotImplementedError

    async def list_active(self) -> list[Job]:
        """Active and scheduled jobs, newest first."""
        raise NotImplementedError

    async def history(self, cluster: str | None = None, limit: int = 20) -> list[Job]:
        """All jobs (any state) newest first, optionally for one cluster."""
        raise NotImplementedError

    async def approve(self, job_id: str, gate_id: str, user: str) -> Job:
        """Approve the open approval gate `gate_id`. Two-person rule enforced here."""
        raise NotImplementedError

    async def reject(self, job_id: str, gate_id: str, user: str) -> Job:
        """Reject: at the disable gate cancels; at the enable gate holds (logins stay off)."""
        raise NotImplementedError

    async def confirm(self, job_id: str, gate_id: str, user: str) -> Job:
        """Confirm an operator-assisted step was done; the worker then verifies."""
        raise NotImplementedError

    async def abort(self, job_id: str, user: str) -> Job:
        """Abort per DESIGN §1: clean before step 5, enable gate between 5 and 6, refused after."""
        raise NotImplementedError

    async def set_card(self, job_id: str, channel: str, ts: str) -> None:
        """Notifier: remember the status card's channel and ts."""
        raise NotImplementedError

    async def set_gate_message(self, job_id: str, gate_id: str, ts: str) -> None:
        """Notifier: remember which message carries a gate's buttons."""
        raise NotImplementedError
