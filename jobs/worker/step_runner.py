"""The runner: handle one work item = run at most ONE step of one job, then commit.

Delivery guarantee: work items arrive at least once (duplicates, reclaimed items, retries);
appliance side effects happen at most once. The runner takes the job's lease (a new fencing
token), re-reads the job and runs its current step only if the job is runnable now; every
write (start, checkpoint, progress, result) is a compare-and-set on (state, step, fence), so
a worker that lost its lease or a job that moved on (abort) makes the write a refused no-op,
and the steps check the appliance before they act. Each attempt of a step runs within a
time budget (jobs/worker/budget.py): a hung appliance call cannot hold a job for long.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

import structlog

from jobs.appliance.protocol import Appliance, ApplianceError
from jobs.config.clock import Clock
from jobs.config.inventory import Cluster, Inventory
from jobs.config.settings import Settings
from jobs.procedures import procedure_for
from jobs.rules import decisions, escalation, timer_names
from jobs.rules.change import Change
from jobs.rules.events import EventKind
from jobs.rules.model import Job, State, Step
from jobs.rules.outputs import StepOut
from jobs.rules.transitions import apply_result, clone, remind, start_step, sync_timers
from jobs.steps.base import AskOperator, Fail, Poll, StepContext, StepFn, StepResult
from jobs.store.ports import (
    FENCED,
    JobCommits,
    JobLease,
    LeaseLost,
    Leases,
    Snapshot,
    TimerSchedule,
    WorkItem,
)
from jobs.worker.budget import attempt_budget, over_budget

ApplianceFactory = Callable[[Cluster], Appliance]
# Called after each committed write of a step run: with the step's result, or None for the
# start and checkpoint commits. The crash test kills its process here; metrics may count.
AfterCommit = Callable[[Job, StepResult | None], Awaitable[None]]

log = structlog.get_logger("jobs.worker.step_runner")

# Outcomes of `Runner.handle`, for logs and tests.
DONE = "committed"
REFUSED = "refused"  # the job moved on or the lease was lost: nothing written
BUSY = "busy"  # another worker holds the lease: retried shortly via a timer
BUSY_PAUSES = (0.02, 0.05, 0.1)  # seconds between quick re-asks for a busy lease
SKIPPED = "skipped"  # nothing to run now (settled, waiting on a human, not due)
MISSING = "missing"
REMINDED = "reminded"
EXPIRED = "expired"  # an unanswered disable gate cancelled its job
ESCALATED = "escalated"  # logins off too long while a human is awaited: on-call called


class PageSender(Protocol):
    """Sends the escalation webhook for a `page` item, in the background (jobs/worker/pager.py)."""

    async def handle(self, item: WorkItem) -> str: ...


class Runner:
    """Runs steps for one worker, several items at once (each under its own lease; the
    worker's pool never runs two items of one job at once).

    Talks to the store through `jobs.store.ports` (the process wiring passes the Redis
    implementations in).
    """

    def __init__(
        self,
        store: JobCommits,
        timers: TimerSchedule,
        leases: Leases,
        settings: Settings,
        inventory: Inventory,
        clock: Clock,
        appliances: ApplianceFactory,
        steps: Mapping[Step, StepFn] | None = None,
        after_commit: AfterCommit | None = None,
        pager: PageSender | None = None,
    ) -> None:
        self.store = store
        self.pager = pager
        self.timers = timers
        self.leases = leases
        self.settings = settings
        self.inventory = inventory
        self.clock = clock
        self.appliances = appliances
        self._steps = steps
        self.after_commit = after_commit
        # item id -> the lease held while that item is handled (the heartbeat renews each)
        self.held: dict[str, JobLease] = {}

    def implementation(self, job: Job) -> StepFn | None:
        """The function of the job's current step: from its procedure's table, unless the
        runner was given its own mapping (tests wrap steps that way)."""
        if self._steps is not None:
            return self._steps.get(job.step)
        procedure = procedure_for(job)
        return procedure.spec(job.step).run if job.step in procedure else None

    async def heartbeat(self, item_id: str) -> bool:
        """Extend (or take back) the lease held for `item_id`; False only when another
        worker has it. No lease at this moment (being taken or just released) is no loss."""
        lease = self.held.get(item_id)
        if lease is None:
            return True
        return await lease.renew() or self.held.get(item_id) is not lease

    async def handle(self, item: WorkItem) -> str:
        """Process one work item; returns the outcome (see the constants above)."""
        if item.kind == timer_names.PAGE:  # no lease: a webhook call never holds up the job
            return await self.pager.handle(item) if self.pager is not None else SKIPPED
        lease = self.leases.lease(item.job_id, self.settings.PPS_LEASE_SECONDS)
        if not await self._acquire(lease):
            await self._retry_later(item)
            return BUSY
        self.held[item.id] = lease
        try:
            snap = await self.store.load(item.job_id)
            if snap is None:
                return MISSING
            with structlog.contextvars.bound_contextvars(
                job_id=snap.job.id, cluster=snap.job.cluster, step=snap.job.step.value
            ):
                if item.kind == timer_names.REMINDER:
                    return await self._remind(snap, item)
                if item.kind == timer_names.GATE_TIMEOUT:
                    return await self._gate_timeout(snap, item)
                if item.kind == timer_names.ESCALATE:
                    return await self._escalate(snap, item)
                why = self.not_runnable(snap.job, item)
                if why:
                    log.debug("skip", reason=why, kind=item.kind)
                    return SKIPPED
                return await self._run_step(snap)
        finally:
            if self.held.get(item.id) is lease:
                del self.held[item.id]
            await lease.release()

    async def _acquire(self, lease: JobLease) -> bool:
        # The usual holder is the worker that just committed the previous step and enqueued
        # this item: it lets go within milliseconds. Ask again briefly before parking the
        # item on a timer, which the timer tick would release only up to a second later.
        for pause in BUSY_PAUSES:
            if await lease.acquire():
                return True
            await self.clock.sleep(pause)
        return await lease.acquire()

    def not_runnable(self, job: Job, item: WorkItem) -> str:
        """Why the job's step must not run for this item now ("" when it may)."""
        if job.settled:
            return "settled"
        if job.open_gate() is not None:
            return "waiting on a human"
        if job.wake_timer:  # parked on a durable timer: only that timer, or its time, wakes it
            fired = item.member == job.wake_timer
            due = job.wake_at is None or self.clock.now() >= job.wake_at
            if not (fired or due):
                return "not due"
        return ""

    async def _retry_later(self, item: WorkItem) -> None:
        # Someone else holds the lease. Put the item back on a short timer rather than drop
        # it: the holder may have read the job before the change this item announces.
        retry = timer_names.member(item.job_id, timer_names.RETRY)
        m = item.member if item.kind != "step" else retry
        delay = min(1.0, self.settings.PPS_LEASE_SECONDS / 2)
        await self.timers.schedule(m, self.clock.now() + delay)

    async def _remind(self, snap: Snapshot, item: WorkItem) -> str:
        job = snap.job
        if job.reminder_timer != item.member:
            return SKIPPED  # superseded, or reminders stopped
        new, change = clone(job), Change()
        change.remove_timer(item.member)  # still scheduled when a worker tick handles it
        remind(new, change, self.clock.now(), self.settings, self.approvers(job.cluster))
        # A job left waiting by an older version has no escalation armed yet: arm it now.
        escalation.arm(new, change, self.settings)
        ok = await self.store.commit(snap, new, change, expect=(*FENCED, "reminder_timer"))
        return REMINDED if ok else REFUSED

    def approvers(self, cluster_name: str) -> tuple[str, ...]:
        """Who approves the cluster's gates (user and group ids): reminders mention them."""
        cluster = self.inventory.cluster(cluster_name)
        if cluster is not None and cluster.approvers:
            return cluster.approvers
        return tuple(self.settings.approvers)

    async def _gate_timeout(self, snap: Snapshot, item: WorkItem) -> str:
        # The token is the gate's id; a decision committed first (compared on `gates`) wins.
        new = clone(snap.job)
        change = decisions.expire(new, item.token, self.clock.now(), self.settings)
        if change is None:
            return SKIPPED  # decided, aborted or superseded meanwhile
        if not await self.store.commit(snap, new, change, expect=(*FENCED, "gates")):
            return REFUSED
        if not new.terminal:
            return DONE  # fired early (the timeout was raised): re-armed
        log.info("disable gate unanswered: job cancelled", gate=item.token)
        return EXPIRED

    async def _escalate(self, snap: Snapshot, item: WorkItem) -> str:
        new = clone(snap.job)
        change = escalation.escalate(new, self.clock.now(), self.settings)
        if change is None:
            return SKIPPED  # logins back on, nobody awaited, or escalated already
        if not await self.store.commit(snap, new, change):
            # The job moved meanwhile (a decision): look again shortly, it may still wait.
            await self.timers.schedule(item.member, self.clock.now() + 1.0)
            return REFUSED
        if new.outputs.escalated_at is None:
            return DONE  # fired early: re-armed
        log.warning("logins off too long: escalated", channel=self.settings.PPS_ESCALATION_CHANNEL
                    or new.channel)
        return ESCALATED

    async def _commit(self, snap: Snapshot, new: Job, change: Change) -> None:
        if not await self.store.commit(snap, new, change):
            raise LeaseLost(new.id)

    async def _run_step(self, snap: Snapshot) -> str:
        now = self.clock.now()
        if snap.job.state is not State.WAITING:
            new, change = clone(snap.job), Change()
            start_step(new, change, now)
            sync_timers(new, change, now, self.settings)
            if not await self.store.commit(snap, new, change):
                return REFUSED
            await self._after(new, None)
        try:
            result = await self._call_step(snap)
        except LeaseLost:
            log.info("step abandoned: fenced out or job moved")
            return REFUSED
        new = clone(snap.job)
        change = apply_result(new, result, self.clock.now(), self.settings)
        if isinstance(result, Poll | AskOperator) and result.detail:
            rec = new.step_record(snap.job.step)  # a waiting step: the card says what it saw
            rec.detail = result.detail
            new.set_step_record(snap.job.step, rec)
        if not await self.store.commit(snap, new, change):
            log.info("result refused: fenced out or job moved", result=type(result).__name__)
            return REFUSED
        log.info("step committed", result=type(result).__name__, state=new.state.value)
        await self._after(new, result)
        return DONE

    async def _call_step(self, snap: Snapshot) -> StepResult:
        job = snap.job
        cluster = self.inventory.cluster(job.cluster)
        impl = self.implementation(job)
        if cluster is None:
            return Fail(f"cluster {job.cluster} is no longer in the inventory")
        if impl is None:
            return Fail(f"no implementation for step {job.step.value}")
        ctx = StepContext(
            job=clone(job),
            cluster=cluster,
            inventory=self.inventory,
            appliance=self.appliances(cluster),
            settings=self.settings,
            clock=self.clock,
            checkpoint=lambda outputs: self._checkpoint(snap, ctx, outputs),
            progress=lambda text: self._progress(snap, text),
            procedure=procedure_for(job),
        )
        budget = attempt_budget(job, self.settings, self.clock.now())
        cut = asyncio.timeout(budget)
        try:
            async with cut:
                return await impl(ctx)
        except LeaseLost:
            raise
        except self.store.outage_errors:
            raise
        except ApplianceError as exc:
            return Fail(str(exc))
        except Exception as exc:
            if isinstance(exc, TimeoutError) and cut.expired():
                # A hung attempt must not hold the job (and its lease) past its budget.
                log.warning("step attempt cut off", budget_s=round(budget, 3))
                return over_budget(ctx.job, self.settings, self.clock.now(), budget)
            # A bug must not leave logins silently disabled: fail loudly, keep the gate offered.
            log.exception("step crashed")
            title = ctx.spec.title
            return Fail(f"internal error in {title}: {type(exc).__name__}")

    async def _checkpoint(self, snap: Snapshot, ctx: StepContext, outputs: StepOut) -> None:
        new = clone(snap.job)
        new.outputs.merge(outputs)
        await self._commit(snap, new, Change())
        ctx.job.outputs.merge(outputs)
        await self._after(new, None)

    async def _progress(self, snap: Snapshot, text: str) -> None:
        change = Change()
        change.event(EventKind.PROGRESS, step=snap.job.step.value, text=text)
        await self._commit(snap, clone(snap.job), change)

    async def _after(self, job: Job, result: StepResult | None) -> None:
        if self.after_commit is not None:
            await self.after_commit(job, result)
