"""What the runner and the service need from the store: small Protocols and the plain data
they exchange. Imports no redis.

The Redis implementations sit beside this module (`job_store.JobStore`, `timers.Timers`,
`lease.RedisLeases`, `presence.Presence`); the process wiring passes them in, and
mypy checks that they satisfy these Protocols. Tests implement the same Protocols in
memory, so the runner's and the rules' logic runs without sockets.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from jobs.rules.change import Change
from jobs.rules.model import Job

FENCED = ("state", "step", "fence")  # what a worker's commit compares


@dataclass
class Snapshot:
    """A job as read, with the raw record it came from (the baseline of the next commit)."""

    job: Job
    raw: dict[str, str]


class LeaseLost(Exception):
    """This worker no longer owns the job: its commit was refused (fenced out or job moved)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"lease on {job_id} lost or job changed under us")
        self.job_id = job_id


@dataclass(frozen=True)
class WorkItem:
    """One delivery: `kind` is step | poll | settle | start | reminder | retry."""

    id: str
    job_id: str
    kind: str = "step"
    token: str = ""

    @classmethod
    def from_entry(cls, entry_id: str, fields: dict[str, str]) -> WorkItem:
        return cls(
            entry_id,
            fields.get("job_id", ""),
            fields.get("kind", "step"),
            fields.get("token", ""),
        )

    @property
    def member(self) -> str:
        """The timer member this item came from (or would be re-scheduled as)."""
        return f"{self.job_id}|{self.kind}|{self.token}"


class JobCommits(Protocol):
    """Read a job and commit its next version with a `Change`, compare-and-set (the runner)."""

    @property
    def outage_errors(self) -> tuple[type[Exception], ...]:
        """Exceptions meaning the store did not answer: they propagate, never fail a step."""
        ...

    async def load(self, job_id: str) -> Snapshot | None:
        """The job and its raw record, or None."""
        ...

    async def commit(
        self, snap: Snapshot, new: Job, change: Change, expect: Iterable[str] = FENCED
    ) -> bool:
        """Write `new` and `change` if the `expect` fields still match `snap`; all or nothing.

        On success `snap` becomes `new`; on refusal nothing was written and False is returned.
        """
        ...


class JobRepository(JobCommits, Protocol):
    """Everything `jobs.service.JobService` reads and writes."""

    async def create(
        self, job: Job, change: Change, *, idem: str | None, start_at: float | None, token: str
    ) -> tuple[str, str, str]:
        """Create `job` with its cluster lock: `("created"|"exists"|"busy", id, requester)`."""
        ...

    async def get(self, job_id: str) -> Job | None: ...

    async def many(self, ids: Iterable[str]) -> list[Job]:
        """Jobs by id (missing ones skipped), in the order given."""
        ...

    async def active_ids(self) -> list[str]: ...

    async def history_ids(self, start: int, stop: int) -> list[str]:
        """Job ids newest first, by rank."""
        ...

    async def lock_holder(self, cluster: str) -> str | None: ...

    async def set_fields(self, job_id: str, fields: dict[str, str]) -> bool:
        """Write a few fields of an existing job (notifier bookkeeping); False if none."""
        ...

    async def set_fields_if_same(
        self, job_id: str, created_at: float, fields: dict[str, str], key: str | None = None
    ) -> bool:
        """Like `set_fields`, only while the job created at `created_at` exists (`key`: a
        record kept beside the job instead of the job's own)."""
        ...

    async def first_seen(self, marker: str, stamp: str, ttl_seconds: int) -> str:
        """Remember `stamp` for `marker` unless one is kept (for `ttl_seconds`); the kept one."""
        ...


class TimerSchedule(Protocol):
    """Durable timers outside a job commit (the runner's lease-busy retry)."""

    async def schedule(self, m: str, due: float) -> None: ...


class JobLease(Protocol):
    """One worker's hold on one job, with a fencing token."""

    async def acquire(self) -> bool: ...

    async def renew(self) -> bool: ...

    async def release(self) -> bool: ...


class Leases(Protocol):
    """Makes the lease of one job."""

    def lease(self, job_id: str, seconds: float) -> JobLease: ...


class WorkerRoster(Protocol):
    """How many workers are alive."""

    async def alive(self) -> int: ...
