"""`MemoryStore`: the store Protocols of `jobs.store.ports` in memory (no Redis, no sockets).

It keeps what the Redis store keeps, in the same shapes: each job as its flat record
(`Job.to_hash`), so a value that would not survive Redis does not survive here either; the
events with a per-job `seq` and their data JSON-encoded; the audit entries; the durable
timers (member -> due, whole milliseconds like the zset scores); the work items; the
cluster locks, released when a job settles; the leases with their fencing tokens.
A commit is a compare-and-set on the `expect` fields, all or nothing, like the Lua script.

The synchronous `read`/`commit_now` are for test code that is not async (the step harness);
the async methods are the Protocols'.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from jobs.config.clock import Clock, ms
from jobs.rules.change import Change
from jobs.rules.events import Event, EventKind
from jobs.rules.model import Job
from jobs.rules.timer_names import parse_member
from jobs.store.ports import FENCED, Snapshot


class MemoryStore:
    """Jobs, events, audit, timers, work items, locks and leases of one test."""

    outage_errors: tuple[type[Exception], ...] = ()  # memory never goes away

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.records: dict[str, dict[str, str]] = {}  # job id -> the job's flat record
        self.events: list[Event] = []
        self.audit: list[dict[str, Any]] = []
        self.timers: dict[str, int] = {}  # member -> due, epoch milliseconds
        self.work: list[dict[str, str]] = []
        self.locks: dict[str, str] = {}  # cluster -> job id
        self.fences: dict[str, int] = {}  # job id -> last fencing token handed out
        self.lease_owners: dict[str, tuple[str, float]] = {}  # job id -> (token, until)
        self.commits = 0  # commits applied (refusals not counted)
        self.refusals = 0

    # -- arranging a test ----------------------------------------------------------------
    def put(self, job: Job) -> None:
        """Write `job` as it is (a test arranging a scenario); takes its cluster lock."""
        self.records[job.id] = {**self.records.get(job.id, {}), **job.to_hash()}
        if job.settled:
            self._unlock(job)
        else:
            self.locks.setdefault(job.cluster, job.id)

    # -- JobCommits --------------------------------------------------------------------
    def read(self, job_id: str) -> Snapshot | None:
        """`load`, for synchronous callers."""
        rec = self.records.get(job_id)
        if rec is None:
            return None
        raw = dict(rec)
        return Snapshot(Job.from_hash(raw), raw)

    async def load(self, job_id: str) -> Snapshot | None:
        return self.read(job_id)

    async def get(self, job_id: str) -> Job | None:
        snap = self.read(job_id)
        return snap.job if snap else None

    def commit_now(
        self, snap: Snapshot, new: Job, change: Change, expect: Iterable[str] = FENCED
    ) -> bool:
        """`commit`, for synchronous callers."""
        rec = self.records.get(new.id)
        if rec is None or any(rec.get(f, "") != snap.raw.get(f, "") for f in expect):
            self.refusals += 1
            return False
        now = self.clock.now()
        new.updated_at = now
        sets = {f: v for f, v in new.to_hash().items() if snap.raw.get(f, "") != v}
        sets.pop("fence", None)  # only the lease writes the fence
        rec.update(sets)
        for kind, data in change.events:
            seq = int(rec.get("event_seq", "0")) + 1
            rec["event_seq"] = str(seq)
            self.events.append(Event(new.id, kind, seq, now, json.loads(json.dumps(data))))
        for entry in change.audit:
            detail = json.loads(json.dumps(entry["detail"]))
            self.audit.append({"job_id": new.id, "cluster": new.cluster, "at": now,
                               "actor": str(entry["actor"]), "action": str(entry["action"]),
                               "detail": detail})  # fmt: skip
        for m in change.zrem:
            self.timers.pop(m, None)
        self.timers.update(change.zadd)
        self.work.extend(dict(item) for item in change.work)
        if new.settled:
            self._unlock(new)
        snap.raw.update(sets)
        snap.job = new
        self.commits += 1
        return True

    async def commit(
        self, snap: Snapshot, new: Job, change: Change, expect: Iterable[str] = FENCED
    ) -> bool:
        return self.commit_now(snap, new, change, expect)

    # -- TimerSchedule -------------------------------------------------------------------
    async def schedule(self, m: str, due: float) -> None:
        self.timers[m] = ms(due)

    # -- Leases --------------------------------------------------------------------------
    def lease(self, job_id: str, seconds: float) -> MemoryLease:
        return MemoryLease(self, job_id, seconds)

    # -- reading what happened -----------------------------------------------------------
    def events_of(self, job_id: str, kind: EventKind | None = None) -> list[Event]:
        """A job's events, oldest first (optionally of one kind)."""
        return [e for e in self.events if e.job_id == job_id and (kind is None or e.kind is kind)]

    def timers_of(self, job_id: str) -> dict[str, float]:
        """A job's durable timers: member -> due epoch seconds."""
        return {m: due / 1000 for m, due in self.timers.items() if parse_member(m)[0] == job_id}

    def _unlock(self, job: Job) -> None:
        if self.locks.get(job.cluster) == job.id:
            del self.locks[job.cluster]


class MemoryLease:
    """One holder's lease on one job, with a fencing token written on the job record."""

    _tokens = 0

    def __init__(self, store: MemoryStore, job_id: str, seconds: float) -> None:
        MemoryLease._tokens += 1
        self.store = store
        self.job_id = job_id
        self.seconds = seconds
        self.token = f"lease-{MemoryLease._tokens}"
        self.fence = 0

    def _owner(self) -> str | None:
        held = self.store.lease_owners.get(self.job_id)
        if held is None or held[1] <= self.store.clock.now():
            return None
        return held[0]

    async def acquire(self) -> bool:
        owner = self._owner()
        if owner == self.token:
            return True
        if owner is not None:
            return False
        self.store.lease_owners[self.job_id] = (self.token, self.store.clock.now() + self.seconds)
        self.fence = self.store.fences.get(self.job_id, 0) + 1
        self.store.fences[self.job_id] = self.fence
        if self.job_id in self.store.records:
            self.store.records[self.job_id]["fence"] = str(self.fence)
        return True

    async def renew(self) -> bool:
        owner = self._owner()
        mine = owner == self.token
        expired_still_ours = owner is None and self.store.fences.get(self.job_id) == self.fence
        if not (mine or (self.fence > 0 and expired_still_ours)):
            return False
        self.store.lease_owners[self.job_id] = (self.token, self.store.clock.now() + self.seconds)
        return True

    async def release(self) -> bool:
        ours = self._owner() == self.token
        if ours:
            del self.store.lease_owners[self.job_id]
        if self.fence > 0 and self.store.fences.get(self.job_id) == self.fence:
            self.store.fences[self.job_id] = self.fence + 1  # a late heartbeat cannot retake it
        return ours
