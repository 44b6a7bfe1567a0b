"""The metrics that matter to an on-call lead, kept by the workers (Prometheus).

Counted from the job events (`jobs.store.event_feed`, one worker per event) so a job ended
by a click in the bot counts as much as one ended by a worker: outcomes, durations, how
long logins were off, how long approvals took, escalations. `pps_logins_disabled` is read
from the active jobs at each scrape (`jobs.worker.metrics_server`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterable

import redis.asyncio as aioredis
from prometheus_client import Counter, Gauge, Histogram
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from jobs.config.clock import Clock
from jobs.rules.events import Event, EventKind
from jobs.rules.model import GateKind, Job
from jobs.store.event_feed import EventFeed
from jobs.store.job_store import JobStore
from jobs.store.keys import Keys

_LONG = (60.0, 300.0, 600.0, 900.0, 1200.0, 1800.0, 2700.0, 3600.0, 7200.0, 14400.0, 28800.0)
_WAIT = (10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 14400.0)

JOBS = Counter("pps_jobs_total", "Finished jobs, by procedure and outcome (succeeded, failed, "
               "cancelled; dry_run for any dry run)", ["procedure", "outcome"])
JOB_SECONDS = Histogram("pps_job_duration_seconds",
                        "Finished jobs (not dry runs): first step started to end",
                        ["procedure"], buckets=_LONG)
LOGINS_OFF_SECONDS = Histogram("pps_logins_disabled_seconds",
                               "How long user logins were off, per finished job that "
                               "disabled them", ["procedure"], buckets=_LONG)
GATE_WAIT = Histogram("pps_gate_wait_seconds",
                      "A question to humans opened to decided (approved, rejected, confirmed, "
                      "aborted or expired)", ["gate"], buckets=_WAIT)
LOGINS_DISABLED = Gauge("pps_logins_disabled",
                        "Clusters whose user logins are off now (read at each scrape)")
ESCALATIONS = Counter("pps_escalations_total",
                      "Jobs escalated to on-call: logins off too long with a human awaited")
ESCALATION_WEBHOOKS = Counter("pps_escalation_webhooks_total",
                              "Escalation webhook attempts, by action and outcome "
                              "(sent, retry, failed)", ["action", "outcome"])

JobLookup = Callable[[str], Awaitable[Job | None]]


def gate_label(job: Job, gate_id: str) -> str | None:
    """`gate_disable`, `gate_enable`, or `confirm_<step>` for an operator-assisted step."""
    gate = job.gate(gate_id)
    if gate is None:
        return None
    return gate.step.value if gate.kind is GateKind.APPROVAL else f"confirm_{gate.step.value}"


def gate_wait(job: Job, gate_id: str) -> float | None:
    gate = job.gate(gate_id)
    if gate is None or gate.decided_at is None:
        return None
    return max(0.0, gate.decided_at - gate.opened_at)


def job_seconds(job: Job, ended: float) -> float | None:
    """From the first step's start to the end; None if no step ever started."""
    starts = [float(r["started_at"]) for r in job.steps.values() if r.get("started_at")]
    return max(0.0, ended - min(starts)) if starts else None


def observe(ev: Event, job: Job | None) -> None:
    """Count one job event (`job` as it is now; None when its record is gone)."""
    if ev.kind is EventKind.ESCALATED:
        ESCALATIONS.inc()
    elif ev.kind is EventKind.GATE_DECIDED and job is not None:
        gate_id = str(ev.data.get("gate_id", ""))
        label, wait = gate_label(job, gate_id), gate_wait(job, gate_id)
        if label is not None and wait is not None:
            GATE_WAIT.labels(label).observe(wait)
    elif ev.kind is EventKind.FINISHED:
        procedure = job.procedure if job is not None else "upgrade"
        dry = job.dry_run if job is not None else bool(ev.data.get("dry_run"))
        JOBS.labels(procedure, "dry_run" if dry else str(ev.data.get("state"))).inc()
        if dry or job is None:
            return
        took = job_seconds(job, job.finished_at or ev.at)
        if took is not None:
            JOB_SECONDS.labels(procedure).observe(took)
        off = (ev.data.get("summary") or {}).get("logins_disabled_seconds")
        if isinstance(off, int | float):
            LOGINS_OFF_SECONDS.labels(procedure).observe(float(off))


WANTED = frozenset({EventKind.ESCALATED, EventKind.GATE_DECIDED, EventKind.FINISHED})


async def tally(events: Iterable[Event], lookup: JobLookup) -> int:
    """Observe the events that feed a metric; returns how many were counted."""
    n = 0
    for ev in events:
        if ev.kind not in WANTED:
            continue
        job = None if ev.kind is EventKind.ESCALATED else await lookup(ev.job_id)
        observe(ev, job)
        n += 1
    return n


def clusters_with_logins_off(jobs: Iterable[Job]) -> int:
    """How many clusters have a job whose logins are (or may be) off."""
    return len({j.cluster for j in jobs if j.logins_disabled})


class EventTally:
    """A worker's share of the job events, counted into the metrics (a scheduler tick)."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, clock: Clock, consumer: str) -> None:
        self.feed = EventFeed(redis, keys, consumer)
        self.jobs = JobStore(redis, keys, clock)

    async def count_events(self) -> None:
        """Count the events published since the last tick (Redis away: next tick)."""
        with contextlib.suppress(RedisConnectionError, RedisTimeoutError, OSError):
            await tally(await self.feed.read(), self.jobs.get)

    async def active_jobs(self) -> list[Job]:
        return await self.jobs.many(await self.jobs.active_ids())
