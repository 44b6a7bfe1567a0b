"""`JobService`: the engine's entry points for the handlers and the notifier.

Handlers only call this (plus their own authorization): create, read, decide, abort.
Every method is atomic in the store and raises a `jobs.rules.errors.EngineError` subclass
when it refuses; a refusal changes nothing. Delivery guarantee: a decision commits exactly once
(compare-and-set bound to the gate id); the work item it enqueues is delivered at least once,
and the worker's fencing makes the appliance side effect happen at most once.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from jobs.config.clock import Clock
from jobs.config.inventory import Inventory
from jobs.config.settings import Settings
from jobs.procedures import PROCEDURES
from jobs.rules import decisions
from jobs.rules.change import Change
from jobs.rules.errors import ClusterBusy, EngineError, UnknownCluster, UnknownJob
from jobs.rules.events import EventKind
from jobs.rules.model import GATE_TS_FIELD, Job, State
from jobs.rules.transitions import clone
from jobs.shared_reads import FreshReads
from jobs.store.ports import HistoryPages, JobRepository, RequestLimit, WorkerRoster

# A decision's compare-and-set is retried when the job moved between read and write (a worker
# started a step, a reminder fired); each retry re-validates, so a lost race becomes StaleGate.
_DECISION_ATTEMPTS = 20
_ID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32: no I, L, O, U
_ID_ATTEMPTS = 5  # a new id when one is already in use (two jobs in one minute, 2^-20)


async def _nothing() -> None:
    return None


def new_job_id(now: float) -> str:
    """A job id that never repeats: `J-260115-0800-K7QF`, the UTC minute and 20 random bits.

    A counter in Redis starts again after a data loss; the time and the random part do not,
    so a new job can never take an old job's id (nor its backup folder). 18 characters of
    `[A-Za-z0-9-]` (DESIGN §4.1).
    """
    stamp = time.strftime("%y%m%d-%H%M", time.gmtime(now))
    return f"J-{stamp}-" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(4))


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
    procedure: str = "upgrade"  # "rollback": `/pps rollback` (preflight finds the target)


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
        index: HistoryPages,
        upgrade_limit: RequestLimit,
    ) -> None:
        self.store = store
        self.presence = presence
        self.index = index
        self.upgrade_limit = upgrade_limit
        self.settings = settings
        self.inventory = inventory
        self.clock = clock
        # The ack path's listings: 100 concurrent `/pps list`/`status`/`history` read once or
        # twice, each caller still from a read begun after it asked (no staler than alone).
        self._job_reads: FreshReads[list[Job]] = FreshReads()
        self._worker_reads: FreshReads[int] = FreshReads()

    async def create_job(self, req: UpgradeRequest) -> tuple[Job, bool]:
        """Create and enqueue (or schedule) a job; `(job, created)`.

        The same idempotency key returns the existing job with `created=False`. Raises
        `UnknownCluster`, `ClusterBusy` (naming the running job and its requester), or
        `EngineError` for an unknown version.
        """
        cluster = self.inventory.cluster(req.cluster)
        if cluster is None:
            raise UnknownCluster(req.cluster)
        procedure = PROCEDURES.get(req.procedure)
        if procedure is None:
            raise EngineError(f"Unknown procedure {req.procedure!r}.")
        fw = self.inventory.firmware_for(req.target) if req.target else self.inventory.newest
        if fw is None:
            known = ", ".join(f.version for f in self.inventory.firmware) or "none"
            what = f"Version {req.target!r} is" if req.target else "No version is"
            raise EngineError(f"{what} not in the firmware catalogue (available: {known}).")
        # A rollback's target is the build on the rollback partitions: its preflight finds it.
        target = fw.version if procedure.target_from_catalogue else ""
        now = self.clock.now()
        start_at = req.at if req.at is not None and req.at > now else None
        job = Job(
            id="",
            cluster=cluster.name,
            target=target,
            requester=req.requester,
            procedure=procedure.name,
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
            target=target,
            procedure=procedure.name,
            dry_run=req.dry_run,
            allow_downgrade=req.allow_downgrade,
            scheduled_at=start_at,
        )
        for _ in range(_ID_ATTEMPTS):
            job.id = new_job_id(now)
            status, job_id, holder_requester = await self.store.create(
                job, change, idem=req.idempotency_key, start_at=start_at,
                token=secrets.token_hex(4),
            )
            if status != "taken":
                break
        else:
            raise EngineError("Could not find a free job id; try again.")
        if status == "busy":
            raise ClusterBusy(cluster.name, job_id, holder_requester)
        trim = None
        if status == "created":  # each new entry drops the expired ones: the index stays bounded
            trim = self.index.trim(cluster.name, now, self.settings.retention_seconds)
        # The trim and the read side by side: one round trip of the ack's wait, not two.
        created, _ = await asyncio.gather(self.store.get(job_id), trim or _nothing())
        if created is None:  # only if someone deleted the job behind our back
            raise UnknownJob(job_id)
        return created, status == "created"

    async def find(self, job_id: str) -> Job | None:
        """The job, or None."""
        return await self.store.get(job_id)

    async def find_many(self, ids: Iterable[str]) -> list[Job]:
        """The jobs that exist among `ids`, in that order; one round trip."""
        return await self.store.many(ids)

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
        return await self._worker_reads.read("alive", self.presence.alive)

    async def first_seen(self, marker: str, ttl_seconds: int) -> str:
        """When `marker` (e.g. one Slack delivery) was first seen within `ttl_seconds`: the
        same answer for every re-delivery, a new one once the marker expired."""
        return await self.store.first_seen(marker, f"{self.clock.now():.6f}", ttl_seconds)

    async def list_active(self) -> list[Job]:
        """Active and scheduled jobs, newest first."""
        return list(await self._job_reads.read("active", self._read_active))

    async def _read_active(self) -> list[Job]:
        jobs = await self.store.many(await self.store.active_ids())
        return sorted(jobs, key=lambda j: (j.created_at, j.id), reverse=True)

    async def history(self, cluster: str | None = None, limit: int = 20) -> list[Job]:
        """Jobs (any state) newest first, of one cluster or of all: about one page of reads
        (the cluster's own index; entries of expired jobs are skipped)."""
        return list(await self._job_reads.read(
            ("history", cluster, limit), lambda: self._read_history(cluster, limit)))

    async def _read_history(self, cluster: str | None, limit: int) -> list[Job]:
        out: list[Job] = []
        start, page = 0, max(limit, 10)
        while len(out) < limit:
            ids = await self.index.ids(cluster, start, start + page - 1)
            if not ids:
                break
            out.extend(await self.store.many(ids))
            start += page
        return out[:limit]

    async def count_upgrade_request(self, user: str, request_id: str) -> float | None:
        """Count one `upgrade` request of `user` (PPS_USER_UPGRADES_PER_HOUR, dry runs
        included); None when allowed, else when the user may ask again (epoch seconds)."""
        limit = self.settings.PPS_USER_UPGRADES_PER_HOUR
        return await self.upgrade_limit.take(user, request_id, limit)

    async def uncount_upgrade_request(self, user: str, request_id: str) -> None:
        """A counted request created no job (refused): it does not use up the user's limit."""
        await self.upgrade_limit.give_back(user, request_id)

    async def approve(self, job_id: str, gate_id: str, user: str) -> Job:
        """Approve the open approval gate `gate_id`. Two-person rule enforced here, and the
        cluster's maintenance window for the disable gate (`OutsideWindow`)."""

        def fn(job: Job, now: float) -> Change:
            cluster = self.inventory.cluster(job.cluster)
            window = cluster.window if cluster is not None else None
            return decisions.approve_in_window(job, gate_id, user, now, self.settings, window)

        return await self._decide(job_id, fn)

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
