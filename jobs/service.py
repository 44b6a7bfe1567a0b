"""`JobService`: the engine's entry points for the handlers and the notifier.

Handlers only call this (plus their own authorization): create, read, decide, abort.
Every method is atomic in the store and raises a `jobs.rules.errors.EngineError` subclass
when it refuses; a refusal changes nothing. Delivery guarantee: a decision commits exactly once
(compare-and-set bound to the gate id); the work item it enqueues is delivered at least once,
and the worker's fencing makes the appliance side effect happen at most once.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from jobs.config.clock import Clock
from jobs.config.inventory import Inventory
from jobs.config.settings import Settings
from jobs.rules import decisions
from jobs.rules.change import Change
from jobs.rules.errors import ClusterBusy, EngineError, UnknownCluster, UnknownJob
from jobs.rules.events import EventKind
from jobs.rules.model import GATE_TS_FIELD, Job, State
from jobs.rules.transitions import clone
from jobs.store.ports import JobRepository, WorkerRoster

# A decision's compare-and-set is retried when the job moved between read and write (a worker
# started a step, a reminder fired); each retry re-validates, so a lost race becomes StaleGate.
_DECISION_ATTEMPTS = 20


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
    """Facade over the store (`jobs.store.ports`; the process wiring passes the Redis one in).
    One instance per process is enough."""

    def __init__(
        self,
        store: JobRepository,
        presence: WorkerRoster,
        settings: Settings,
        inventory: Inventory,
        clock: Clock,
    ) -> None:
        self.store = store
        self.presence = presence
        self.settings = settings
        self.inventory = inventory
        self.clock = clock

    async def create_job(self, req: UpgradeRequest) -> tuple[Job, bool]:
        """Create and enqueue (or schedule) a job; `(job, created)`.

        The same idempotency key returns the existing job with `created=False`. Raises
        `UnknownCluster`, `ClusterBusy` (naming the running job and its requester), or
        `EngineError` for an unknown version.
        """
        cluster = self.inventory.cluster(req.cluster)
        if cluster is None:
            raise UnknownCluster(req.cluster)
        fw = self.inventory.firmware_for(req.target) if req.target else self.inventory.newest
        if fw is None:
            known = ", ".join(f.version for f in self.inventory.firmware) or "none"
            what = f"Version {req.target!r} is" if req.target else "No version is"
            raise EngineError(f"{what} not in the firmware catalogue (available: {known}).")
        now = self.clock.now()
        start_at = req.at if req.at is not None and req.at > now else None
        job = Job(
            id="",
            cluster=cluster.name,
            target=fw.version,
            requester=req.requester,
            channel=req.channel or cluster.channel or self.settings.PPS_CHANNEL,
            state=State.SCHEDULED if start_at is not None else State.QUEUED,
            created_at=now,
            updated_at=now,
            scheduled_at=start_at,
            wake_at=start_at,
            dry_run=req.dry_run,
            allow_downgrade=req.allow_downgrade,
        )
        change = Change()
        change.event(EventKind.CREATED, dry_run=req.dry_run, scheduled_at=start_at)
        change.record(
            req.requester,
            "create",
            target=fw.version,
            dry_run=req.dry_run,
            allow_downgrade=req.allow_downgrade,
            scheduled_at=start_at,
        )
        status, job_id, holder_requester = await self.store.create(
            job, change, idem=req.idempotency_key, start_at=start_at, token=secrets.token_hex(4)
        )
        if status == "busy":
            raise ClusterBusy(cluster.name, job_id, holder_requester)
        created = await self.store.get(job_id)
        if created is None:  # only if someone deleted the job behind our back
            raise UnknownJob(job_id)
        return created, status == "created"

    async def find(self, job_id: str) -> Job | None:
        """The job, or None."""
        return await self.store.get(job_id)

    async def get(self, job_id: str) -> Job:
        """The job, or `UnknownJob`."""
        job = await self.store.get(job_id)
        if job is None:
            raise UnknownJob(job_id)
        return job

    async def active_for_cluster(self, cluster: str) -> Job | None:
        """The job holding the cluster's lock, if any."""
        holder = await self.store.lock_holder(cluster)
        return await self.store.get(holder) if holder else None

    async def workers_alive(self) -> int:
        """How many workers are running (seen within the last three leases)."""
        return await self.presence.alive()

    async def first_seen(self, marker: str, ttl_seconds: int) -> str:
        """When `marker` (e.g. one Slack delivery) was first seen within `ttl_seconds`: the
        same answer for every re-delivery, a new one once the marker expired."""
        return await self.store.first_seen(marker, f"{self.clock.now():.6f}", ttl_seconds)

    async def list_active(self) -> list[Job]:
        """Active and scheduled jobs, newest first."""
        jobs = await self.store.many(await self.store.active_ids())
        return sorted(jobs, key=lambda j: (j.created_at, j.id), reverse=True)

    async def history(self, cluster: str | None = None, limit: int = 20) -> list[Job]:
        """All jobs (any state) newest first, optionally for one cluster."""
        out: list[Job] = []
        start, page = 0, max(limit, 50)
        while len(out) < limit:
            ids = await self.store.history_ids(start, start + page - 1)
            if not ids:
                break
            jobs = await self.store.many(ids)
            out.extend(j for j in jobs if cluster is None or j.cluster == cluster)
            start += page
        return out[:limit]

    async def approve(self, job_id: str, gate_id: str, user: str) -> Job:
        """Approve the open approval gate `gate_id`. Two-person rule enforced here."""
        return await self._decide(
            job_id, lambda job, now: decisions.approve(job, gate_id, user, now, self.settings)
        )

    async def reject(self, job_id: str, gate_id: str, user: str) -> Job:
        """Reject: at the disable gate cancels; at the enable gate holds (logins stay off)."""
        return await self._decide(
            job_id, lambda job, now: decisions.reject(job, gate_id, user, now, self.settings)
        )

    async def confirm(self, job_id: str, gate_id: str, user: str) -> Job:
        """Confirm an operator-assisted step was done; the worker then verifies."""
        return await self._decide(
            job_id, lambda job, now: decisions.confirm(job, gate_id, user, now, self.settings)
        )

    async def abort(self, job_id: str, user: str) -> Job:
        """Abort per DESIGN §1: clean before step 5, enable gate between 5 and 6, refused after."""
        return await self._decide(
            job_id, lambda job, now: decisions.abort(job, user, now, self.settings)
        )

    async def set_card(
        self, job_id: str, channel: str, ts: str, *, created_at: float | None = None
    ) -> None:
        """Notifier: remember the status card's channel and ts (on the job instance created
        at `created_at` when given: ids start again after a Redis data loss)."""
        fields = {"channel": channel, "card_ts": ts, "thread_ts": ts}
        if not await self._set_fields(job_id, fields, created_at):
            raise UnknownJob(job_id)

    async def set_gate_message(
        self, job_id: str, gate_id: str, ts: str, *, created_at: float | None = None
    ) -> None:
        """Notifier: remember which message carries a gate's buttons (see `set_card`)."""
        if not await self._set_fields(job_id, {GATE_TS_FIELD + gate_id: ts}, created_at):
            raise UnknownJob(job_id)

    async def _set_fields(
        self, job_id: str, fields: dict[str, str], created_at: float | None
    ) -> bool:
        if created_at is None:
            return await self.store.set_fields(job_id, fields)
        return await self.store.set_fields_if_same(job_id, created_at, fields)

    async def _decide(self, job_id: str, fn: Callable[[Job, float], Change]) -> Job:
        """Validate and apply a human decision with a compare-and-set, retrying lost races."""
        for _ in range(_DECISION_ATTEMPTS):
            snap = await self.store.load(job_id)
            if snap is None:
                raise UnknownJob(job_id)
            new = clone(snap.job)
            change = fn(new, self.clock.now())  # raises EngineError: nothing written
            if await self.store.commit(snap, new, change, expect=decisions.DECISION_FIELDS):
                return new
        raise EngineError(f"Job `{job_id}` is changing right now; try again in a moment.")
