"""The engine's entry points over one Redis client: the Redis implementations of
`jobs.store.ports` handed to `JobService` and `Runner`, which know only the Protocols.

Not imported by `jobs.worker` (this module imports it); the worker process wires its own.
"""

from __future__ import annotations

from collections.abc import Mapping

import redis.asyncio as aioredis

from jobs.config.clock import Clock
from jobs.config.inventory import Inventory
from jobs.config.settings import Settings
from jobs.rules.model import Step
from jobs.service import JobService
from jobs.steps.base import StepFn
from jobs.store.job_store import JobStore
from jobs.store.keys import Keys
from jobs.store.lease import RedisLeases
from jobs.store.presence import Presence
from jobs.store.timers import Timers
from jobs.worker.step_runner import AfterCommit, ApplianceFactory, Runner


def redis_job_store(
    redis: aioredis.Redis, keys: Keys, settings: Settings, clock: Clock
) -> JobStore:
    """The job store of one key prefix, keeping the audit floor of the settings."""
    return JobStore(redis, keys, clock, audit_keep=settings.PPS_AUDIT_KEEP)


def redis_service(
    redis: aioredis.Redis,
    settings: Settings,
    inventory: Inventory,
    clock: Clock,
    keys: Keys | None = None,
) -> JobService:
    """`JobService` over Redis (keys default to `PPS_REDIS_PREFIX`)."""
    keys = keys or Keys(settings.PPS_REDIS_PREFIX)
    return JobService(
        redis_job_store(redis, keys, settings, clock),
        Presence(redis, keys, clock, settings.PPS_LEASE_SECONDS),
        settings,
        inventory,
        clock,
    )


def redis_runner(
    redis: aioredis.Redis,
    keys: Keys,
    settings: Settings,
    inventory: Inventory,
    clock: Clock,
    appliances: ApplianceFactory,
    steps: Mapping[Step, StepFn] | None = None,
    after_commit: AfterCommit | None = None,
) -> Runner:
    """A worker's `Runner` over Redis."""
    return Runner(
        redis_job_store(redis, keys, settings, clock),
        Timers(redis, keys),
        RedisLeases(redis, keys),
        settings,
        inventory,
        clock,
        appliances,
        steps=steps,
        after_commit=after_commit,
    )
