"""The job store: the `job:{id}` hash, job creation, and the fenced compare-and-set commit.

Delivery guarantee: work items are delivered at least once; appliance side effects happen at
most once, because every job write is one Lua compare-and-set on (state, step, fence) and the
steps check the appliance before they act. A commit writes only the hash fields that changed
(the notifier writes `card_ts`/`thread_ts`/`gate_ts:*` concurrently) and, in the same atomic
script, appends the job's events, audit entries, timer changes, work items and, when the job
is settled, releases the cluster lock.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from typing import Any, cast

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from jobs.config.clock import Clock, ms
from jobs.rules.change import Change
from jobs.rules.events import Event
from jobs.rules.model import Job
from jobs.store import lua
from jobs.store.keys import Keys
from jobs.store.ports import FENCED as FENCED
from jobs.store.ports import Snapshot as Snapshot

EVENTS_KEEP = 100_000  # approximate floor of the `events` stream (MAXLEN ~)
AUDIT_KEEP = 100_000  # default floor of the `audit` stream (PPS_AUDIT_KEEP)
IDEM_TTL_SECONDS = 24 * 3600  # how long an idempotency key maps to its job
COMMIT_IDS_KEPT = 8  # recent commit ids on a job: a re-sent commit is recognised (lua.COMMIT)

log = structlog.get_logger("jobs.store.job_store")


def _dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


class JobStore:
    """Reads and atomic writes of jobs under one key prefix (`jobs.store.ports.JobRepository`)."""

    outage_errors: tuple[type[Exception], ...] = (RedisError,)

    def __init__(
        self, redis: aioredis.Redis, keys: Keys, clock: Clock, *, audit_keep: int = AUDIT_KEEP
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.clock = clock
        # The audit stream is trimmed approximately (whole stream nodes, `MAXLEN ~`), never
        # below this many entries.
        self.audit_keep = audit_keep
        self._commit = redis.register_script(lua.COMMIT)
        self._create = redis.register_script(lua.CREATE)
        self._set_if_exists = redis.register_script(lua.SET_IF_EXISTS)
        self._set_if_same = redis.register_script(lua.SET_IF_SAME_JOB)

    # -- reads -------------------------------------------------------------------------
    async def load(self, job_id: str) -> Snapshot | None:
        """The job and its raw hash, or None."""
        # The client decodes responses (jobs.store.redis_client), so every value is a str.
        raw = cast(dict[str, str], await self.redis.hgetall(self.keys.job(job_id)))
        if not raw or "state" not in raw:
            return None
        return Snapshot(Job.from_hash(raw), raw)

    async def get(self, job_id: str) -> Job | None:
        snap = await self.load(job_id)
        return snap.job if snap else None

    async def many(self, ids: Iterable[str]) -> list[Job]:
        """Jobs by id (missing ones skipped), in the order given."""
        out: list[Job] = []
        for job_id in ids:
            job = await self.get(job_id)
            if job is not None:
                out.append(job)
        return out

    async def active_ids(self) -> list[str]:
        return sorted(cast(set[str], await self.redis.smembers(self.keys.active)))

    async def history_ids(self, start: int, stop: int) -> list[str]:
        """Job ids newest first, by rank."""
        return cast(list[str], await self.redis.zrevrange(self.keys.history, start, stop))

    async def lock_holder(self, cluster: str) -> str | None:
        return cast(str | None, await self.redis.hget(self.keys.cluster(cluster), "job_id"))

    async def events(self, job_id: str | None = None) -> list[Event]:
        """All events on the stream (optionally of one job), oldest first. For tests/tools."""
        entries = cast(list[tuple[str, dict[str, str]]], await self.redis.xrange(self.keys.events))
        evs = [Event.from_fields(f) for _, f in entries]
        return [e for e in evs if job_id is None or e.job_id == job_id]

    async def audit_entries(self, job_id: str | None = None) -> list[dict[str, Any]]:
        """Audit entries (optionally of one job), oldest first, `detail` decoded."""
        entries = cast(list[tuple[str, dict[str, str]]], await self.redis.xrange(self.keys.audit))
        out = [{**f, "detail": json.loads(f.get("detail") or "{}")} for _, f in entries]
        return [e for e in out if job_id is None or e.get("job_id") == job_id]

    # -- writes ------------------------------------------------------------------------
    async def create(
        self,
        job: Job,
        change: Change,
        *,
        idem: str | None,
        start_at: float | None,
        token: str,
    ) -> tuple[str, str, str]:
        """Create `job` atomically with its lock; `("created"|"exists"|"busy", id, requester)`.

        The id is allocated here (`J-0001`...). The first event of `change` is the CREATED event;
        audit entries get the new job id.
        """
        fields = job.to_hash()
        fields.pop("wake_timer", None)  # the script names the start timer
        kind, data = change.events[0]
        payload = {
            "idem": idem or "",
            "idem_ttl": str(IDEM_TTL_SECONDS * 1000),
            "fields": fields,
            "created_ms": str(ms(job.created_at)),
            "event": [kind.value, repr(job.created_at), _dumps(data)],
            "audit": [self._audit_fields(job, a)[2:] for a in change.audit],
            "start_ms": "" if start_at is None else str(ms(start_at)),
            "token": token,
            "events_keep": str(EVENTS_KEEP),
            "audit_keep": str(self.audit_keep),
        }
        k = self.keys
        res = await self._create(
            keys=[
                k.seq,
                k.idem(idem) if idem else k.idem(""),
                k.cluster(job.cluster),
                k.active,
                k.history,
                k.events,
                k.audit,
                k.queue,
                k.timers,
            ],
            args=[k.job(""), _dumps(payload)],
        )
        status, job_id = str(res[0]), str(res[1])
        return status, job_id, str(res[2]) if len(res) > 2 else ""

    async def commit(
        self, snap: Snapshot, new: Job, change: Change, expect: Iterable[str] = FENCED
    ) -> bool:
        """Write `new` over `snap` if the `expect` fields are unchanged in Redis; all or nothing.

        Only fields that differ from the snapshot are written. On success the snapshot
        becomes `new`; on refusal nothing was written and False is returned.
        """
        now = self.clock.now()
        new.updated_at = now
        new_hash = new.to_hash()
        sets = {f: v for f, v in new_hash.items() if snap.raw.get(f, "") != v}
        sets.pop("fence", None)  # only the lease writes the fence
        payload = {
            "job_id": new.id,
            # Same id on every re-send of this call (redis-py retries): applied at most once.
            "commit_id": secrets.token_hex(8),
            "commit_ids_kept": str(COMMIT_IDS_KEPT),
            "expect": {f: snap.raw.get(f, "") for f in expect},
            "set": sets,
            "events": [[kind.value, repr(now), _dumps(data)] for kind, data in change.events],
            "audit": [self._audit_fields(new, a) for a in change.audit],
            "zrem": change.zrem,
            "zadd": [[str(due), member] for member, due in change.zadd.items()],
            "enqueue": [[x for kv in item.items() for x in kv] for item in change.work],
            "unlock": new.settled,
            "events_keep": str(EVENTS_KEEP),
            "audit_keep": str(self.audit_keep),
        }
        k = self.keys
        ok, why = await self._commit(
            keys=[
                k.job(new.id),
                k.events,
                k.audit,
                k.timers,
                k.queue,
                k.cluster(new.cluster),
                k.active,
            ],
            args=[_dumps(payload)],
        )
        if int(ok) != 1:
            return False
        if why == "replayed":
            log.info("commit re-sent after a lost reply; it had been applied", job_id=new.id)
        snap.raw.update(sets)
        snap.job = new
        return True

    async def set_fields(self, job_id: str, fields: dict[str, str]) -> bool:
        """Write a few fields of an existing job (notifier bookkeeping); False if no such job."""
        args = [x for kv in fields.items() for x in kv]
        res = await self._set_if_exists(keys=[self.keys.job(job_id)], args=args)
        return int(res) == 1

    async def set_fields_if_same(
        self, job_id: str, created_at: float, fields: dict[str, str], key: str | None = None
    ) -> bool:
        """Write `fields` of hash `key` (default: the job's own hash) only while job `job_id`
        created at `created_at` exists; False otherwise (gone, or a new job with that id)."""
        args = [str(created_at), *(x for kv in fields.items() for x in kv)]
        res = await self._set_if_same(keys=[self.keys.job(job_id), key or self.keys.job(job_id)],
                                      args=args)
        return int(res) == 1

    async def first_seen(self, marker: str, stamp: str, ttl_seconds: int) -> str:
        """Keep `stamp` under `dedupe:<marker>` for `ttl_seconds` unless a stamp is kept
        already (`SET NX EX`); returns the kept one."""
        key = self.keys.dedupe(marker)
        await self.redis.set(key, stamp, nx=True, ex=ttl_seconds)
        kept = await self.redis.get(key)  # decode_responses: a str
        return str(kept) if kept is not None else stamp

    def _audit_fields(self, job: Job, entry: dict[str, Any]) -> list[str]:
        return [
            "job_id",
            job.id,
            "cluster",
            job.cluster,
            "at",
            repr(self.clock.now()),
            "actor",
            str(entry["actor"]),
            "action",
            str(entry["action"]),
            "detail",
            _dumps(entry["detail"]),
        ]
