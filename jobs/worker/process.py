"""The worker process (`ppsbot worker`): consume work items, run one step each, repeat.

Up to `PPS_WORKER_CONCURRENCY` items run at once (`jobs.worker.pool`), each under its own
lease and fence, never two of one job at once; a slow step holds up only its own job.

Delivery guarantee: at-least-once delivery of work items (stream + consumer group, reclaim of
items a dead worker left pending), at-most-once appliance side effects (lease + fencing token
on every job write + steps that check before they act). Any number of workers may run at once.

APScheduler (`AsyncIOScheduler`, memory job store) only ticks: the durable-timer release, the
`XAUTOCLAIM` reclaim, the lease heartbeat, the fleet poll (`jobs.fleet.poller`, read-only) and
the metrics tally (`jobs.worker.metrics`). Reminders are work items like the steps; the
escalation webhook (`jobs.worker.pager`) runs in background tasks. Durable state lives in
Redis, never here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping

import redis.asyncio as aioredis
import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from jobs.appliance.protocol import Appliance
from jobs.config.clock import Clock, SystemClock, ms
from jobs.config.inventory import Cluster, Inventory
from jobs.config.log import ChangeLog
from jobs.config.settings import Settings
from jobs.fleet.poller import FleetPoller
from jobs.fleet.poller import tick_seconds as fleet_tick_seconds
from jobs.rules.model import Step
from jobs.steps.base import StepFn
from jobs.store.dataloss import DataLossGuard
from jobs.store.fleet import FleetStore
from jobs.store.job_store import JobStore
from jobs.store.keys import Keys
from jobs.store.lease import RedisLeases
from jobs.store.page_marks import PageMarks
from jobs.store.presence import Presence
from jobs.store.redis_client import BLOCK_MS, REDIS_PROBE_MAX, backoff
from jobs.store.timers import Timers
from jobs.store.work_queue import WorkItem, WorkQueue
from jobs.worker.metrics import EventTally
from jobs.worker.pager import Pager
from jobs.worker.pool import ItemPool
from jobs.worker.step_runner import AfterCommit, Runner

log = structlog.get_logger("jobs.worker.process")

# Redis errors that mean "not reachable right now": back off and retry, never crash.
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)


TICK_MAX_SECONDS = 0.25


def tick_seconds(settings: Settings) -> float:
    """How often due timers are released: a fraction of the shortest wait, 0.05-0.25 s.

    A timer fires up to one tick late; at 1 s (as before) 20 timers due at once fired
    565 ms late at the median, and the p99 <= 1 s target depended on the tick's phase.
    A tick is one short script call when nothing is due."""
    shortest = min(settings.PPS_POLL_SECONDS, settings.PPS_LEASE_SECONDS)
    if settings.PPS_SETTLE_SECONDS > 0:
        shortest = min(shortest, settings.PPS_SETTLE_SECONDS)
    return max(0.05, min(TICK_MAX_SECONDS, shortest / 5))


def _default_factory(settings: Settings) -> Callable[[Cluster], Appliance]:
    from jobs.appliance.client import make_appliance  # lazy: httpx stack only where needed

    return lambda cluster: make_appliance(cluster, settings=settings)


class Worker:
    """One consumer of the `workers` group. `run()` until `stop()`."""

    def __init__(
        self,
        redis: aioredis.Redis,
        settings: Settings,
        inventory: Inventory,
        *,
        clock: Clock | None = None,
        appliance_factory: Callable[[Cluster], Appliance] | None = None,
        steps: Mapping[Step, StepFn] | None = None,
        name: str | None = None,
        keys: Keys | None = None,
        after_commit: AfterCommit | None = None,
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.clock = clock or SystemClock()
        self.keys = keys or Keys(settings.PPS_REDIS_PREFIX)
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self._factory = appliance_factory or _default_factory(settings)
        self._appliances: dict[str, Appliance] = {}
        self._fleet_appliances: dict[str, Appliance] = {}  # the poll's own, apart from jobs'
        self.queue = WorkQueue(redis, self.keys, self.name)
        self.timers = Timers(redis, self.keys)
        self.store = JobStore(
            redis,
            self.keys,
            self.clock,
            audit_keep=settings.PPS_AUDIT_KEEP,
            retention=settings.retention_seconds,
        )
        self.runner = Runner(
            self.store,
            self.timers,
            RedisLeases(redis, self.keys),
            settings,
            inventory,
            self.clock,
            self._appliance,
            steps=steps,
            after_commit=after_commit,
        )
        lease_ms = ms(settings.PPS_LEASE_SECONDS)
        self.block_ms = max(50, min(BLOCK_MS, lease_ms // 2))
        self.reclaim_idle_ms = 2 * lease_ms
        self._stop = asyncio.Event()
        self._reclaimed: list[WorkItem] = []
        self.pool = ItemPool(settings.PPS_WORKER_CONCURRENCY, self._run_item, self._item_failed)
        self._redis_up: bool | None = None
        self._stage = "read"  # the loop's stage that may fail ("handle": an item, via the pool)
        self._loop_fault: str | None = None  # the stage that failed, until it works again
        self._faults = ChangeLog()  # what is failing now (the loop, a tick): log changes only
        self._lost_lease_of: set[str] = set()  # items whose lost lease was reported
        self.handled = 0  # items handled, for tests and logs
        self.guard = DataLossGuard(redis, self.keys, self.clock)
        self.presence = Presence(redis, self.keys, self.clock, settings.PPS_LEASE_SECONDS)
        self.fleet = FleetPoller(FleetStore(redis, self.keys), inventory, self._fleet_appliance,
                                 self.clock, settings.PPS_FLEET_POLL_SECONDS, self.name)
        self.pager = Pager(self.runner.store, self.timers, PageMarks(redis, self.keys), settings,
                           self.clock)
        self.runner.pager = self.pager
        self.tally = EventTally(redis, self.keys, self.clock, self.name)

    def stop(self) -> None:
        """Ask the worker to finish the items running now and return from `run()`."""
        self._stop.set()
        self.pool.wake()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _appliance(self, cluster: Cluster) -> Appliance:
        # One client per cluster for the worker's life: keeps sessions/connections warm.
        if cluster.name not in self._appliances:
            self._appliances[cluster.name] = self._factory(cluster)
        return self._appliances[cluster.name]

    def _fleet_appliance(self, cluster: Cluster) -> Appliance:
        if cluster.name not in self._fleet_appliances:
            self._fleet_appliances[cluster.name] = self._factory(cluster)
        return self._fleet_appliances[cluster.name]

    async def run(self) -> None:
        """Consume until stopped. Redis outages are waited out, never fatal."""
        # APScheduler warns on every skipped or late tick (a tick waits on Redis during an
        # outage); the worker reports outages itself, once per change. Errors still show.
        logging.getLogger("apscheduler").setLevel(logging.ERROR)
        scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop())
        lease = self.settings.PPS_LEASE_SECONDS
        for fn, every in (
            (self.tick_timers, tick_seconds(self.settings)),
            (self.reclaim, max(0.1, lease / 2)),
            (self.heartbeat, max(0.05, lease / 3)),
            (self.check_data, max(0.2, lease / 2)),
            (self.announce, max(0.05, lease / 3)),
            (self.poll_fleet, fleet_tick_seconds(self.settings.PPS_FLEET_POLL_SECONDS)),
            (self.tally.count_events, max(0.2, 4 * tick_seconds(self.settings))),
        ):
            scheduler.add_job(
                self._guarded(fn),
                "interval",
                seconds=every,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
            )
        scheduler.start()
        log.info("worker started", worker=self.name)
        failures = 0
        try:
            while not self.stopping:
                try:
                    if self._redis_up is not True:
                        await self.queue.ensure_group()
                        # Up as soon as Redis answers, before the items this read brings; the
                        # next outage backs off from the start, not from where this one ended.
                        self._mark_redis(True)
                        failures = 0
                        # Seen before the first tick; a refusal (full, read-only) is the
                        # announce tick's to report, not a reason to stop consuming.
                        with contextlib.suppress(ResponseError):
                            await self.presence.announce(self.name)
                    await self._consume_once()
                    failures = 0
                except REDIS_DOWN as exc:
                    self._mark_redis(False, exc)
                    failures += 1
                    delay = backoff(failures, REDIS_PROBE_MAX)
                    log.debug("redis retry", worker=self.name, attempt=failures, delay=delay)
                    await self._sleep(delay)
                except Exception as exc:
                    # A bug or an unexpected Redis answer (OOM when full, READONLY, ...): the
                    # item stays pending and is reclaimed later; back off so a persistent
                    # fault never spins, and log it when it starts, not on every attempt.
                    self._loop_fault = self._stage
                    if self._faults.failing("loop", exc):
                        log.exception("work item crashed", worker=self.name)
                    failures += 1
                    await self._sleep(backoff(failures))
        finally:
            await self._drain()  # the heartbeat keeps renewing leases meanwhile
            scheduler.shutdown(wait=False)
            with contextlib.suppress(Exception):  # best effort: else it ages out in 3 leases
                await asyncio.wait_for(self.presence.leave(self.name), 2)
            await self._close()
            log.info("worker stopped", worker=self.name, handled=self.handled)

    async def _consume_once(self) -> None:
        """Admit as many items as the pool has room for; they run in the background."""
        self._stage = "read"
        await self.pool.wait_free()
        if self.stopping:
            return
        room = self.pool.free
        if self._reclaimed:
            items, self._reclaimed = self._reclaimed[:room], self._reclaimed[room:]
        else:
            items = await self.queue.read(self.block_ms, count=room)
            self._loop_ok("read")
        for item in items:
            self.pool.submit(item)
        await asyncio.sleep(0)  # let them take their leases before the next (blocking) read

    def _loop_ok(self, stage: str) -> None:
        """A stage of the loop worked. The loop's fault is over when the stage that failed
        works again: an empty read says nothing about an item whose commit Redis refuses
        (full, read-only), which would otherwise log a recovery and a new crash each time
        the item is reclaimed."""
        if self._loop_fault is None or (stage == "read" and self._loop_fault == "handle"):
            return
        self._loop_fault = None
        if self._faults.recovered("loop"):
            log.info("work items run again", worker=self.name)

    async def _run_item(self, item: WorkItem) -> None:
        # The pool's task body: `_handle` is looked up per call (tests replace it).
        await self._handle(item)
        self._loop_ok("handle")

    async def _handle(self, item: WorkItem) -> None:
        """Run one item and acknowledge it once its commit is done."""
        outcome = await self.runner.handle(item)
        await self.queue.ack(item)
        self.handled += 1
        log.debug("item handled", job_id=item.job_id, kind=item.kind, outcome=outcome)

    def _item_failed(self, item: WorkItem, exc: Exception) -> None:
        """An item's run raised: it stays pending and is reclaimed later. Redis away is the
        loop's to wait out; anything else is logged when it starts, not on every item."""
        if isinstance(exc, REDIS_DOWN):
            self._mark_redis(False, exc)
            return
        self._loop_fault = "handle"
        if self._faults.failing("loop", exc):
            log.exception("work item crashed", worker=self.name, job_id=item.job_id,
                          exc_info=exc)

    async def _drain(self) -> None:
        """Shutdown: let running items finish, hand the ones not started back at once."""
        try:
            left = await self.pool.close()
        except asyncio.CancelledError:
            self.pool.cancel()
            raise
        left += self._reclaimed
        self._reclaimed = []
        for item in left:
            with contextlib.suppress(Exception):  # else reclaimed after two leases
                await asyncio.wait_for(self.queue.hand_back(item), 2)

    def _mark_redis(self, up: bool, exc: BaseException | None = None) -> None:
        # Log once per change of state, not once per attempt.
        if up and self._redis_up is False:
            log.info("redis reachable again", worker=self.name)
        elif not up and self._redis_up is not False:
            log.warning("redis unreachable; backing off", worker=self.name, error=str(exc))
        self._redis_up = up

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)

    def _guarded(self, tick: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        """`tick` as a scheduler job that never raises into APScheduler (which would log a
        traceback on every tick): a failure is logged when it starts and when it ends; a
        tick cut short by the scheduler's shutdown ends quietly."""
        name = tick.__name__

        async def guarded() -> None:
            try:
                await tick()
            except asyncio.CancelledError:
                return  # scheduler.shutdown() cancels a tick in flight: nothing went wrong
            except Exception as exc:
                if self._faults.failing(name, exc):
                    log.exception("scheduler tick failing", tick=name, worker=self.name)
                return
            if self._faults.recovered(name):
                log.info("scheduler tick works again", tick=name, worker=self.name)

        guarded.__name__ = name
        return guarded

    async def check_data(self) -> None:
        """Scheduler tick: shout when Redis lost its data (jobs in flight are gone)."""
        if self._redis_up is False:
            return
        with contextlib.suppress(*REDIS_DOWN):
            loss = await self.guard.tick()
            if loss is not None:
                log.error(
                    "redis lost its data",
                    worker=self.name,
                    jobs=[j.job_id for j in loss.jobs],
                    logins_disabled_on=[j.cluster for j in loss.locked_out],
                    message=loss.text(),
                )

    async def announce(self) -> None:
        """Scheduler tick: stamp this worker as alive (the bot warns when none is)."""
        if self._redis_up is False:
            return
        with contextlib.suppress(*REDIS_DOWN):
            await self.presence.announce(self.name)

    async def tick_timers(self) -> None:
        """Scheduler tick: move due durable timers into the work stream."""
        if self._redis_up is False:
            return  # the consume loop is waiting Redis out
        with contextlib.suppress(*REDIS_DOWN):  # the consume loop reports and backs off
            await self.timers.release_all_due(self.clock.now())

    async def poll_fleet(self) -> None:
        """Scheduler tick: read the idle clusters that are due, for the fleet view."""
        if self._redis_up is False:
            return
        with contextlib.suppress(*REDIS_DOWN):
            await self.fleet.poll_due()

    async def reclaim(self) -> None:
        """Scheduler tick: take over items idle for more than two leases (dead workers)."""
        if self._reclaimed or self._redis_up is False or self.stopping:
            return
        try:
            items = await self.queue.reclaim(self.reclaim_idle_ms)
        except REDIS_DOWN:
            return
        items = [i for i in items if i.id not in self.pool]
        if items:
            log.info("reclaimed stale work", count=len(items), worker=self.name)
            self._reclaimed.extend(items)

    async def heartbeat(self) -> None:
        """Scheduler tick: extend the lease of every job being worked on, and their items."""
        items = self.pool.items()
        self._lost_lease_of.intersection_update(i.id for i in items)
        if not items:
            return
        try:
            running = self.pool.running()
            kept = await asyncio.gather(*(self.runner.heartbeat(i.id) for i in running))
            for item, ok in zip(running, kept, strict=True):
                if not ok and item.id not in self._lost_lease_of:
                    self._lost_lease_of.add(item.id)  # once per item: its commit is refused
                    log.warning("lease lost while working", job_id=item.job_id)
            await self.queue.touch(*items)
        except REDIS_DOWN:
            pass

    async def _close(self) -> None:
        await self.pager.aclose()
        shared = {id(a) for a in self._appliances.values()}
        fleet_only = [a for a in self._fleet_appliances.values() if id(a) not in shared]
        for appliance in [*self._appliances.values(), *fleet_only]:
            try:
                await appliance.aclose()
            except Exception:  # closing is best effort at shutdown
                log.warning("appliance close failed", exc_info=True)
        self._appliances.clear()
        self._fleet_appliances.clear()
