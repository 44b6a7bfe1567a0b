"""Test support for the steps: a real inventory on disk, a FakeCluster, and `Harness`.

`Harness` drives the real steps of one job the way the runner does, without Redis: a step's
result goes through `jobs.rules.transitions` (`start_step`, `apply_result`, `remind`) and
gates are decided through `jobs.rules.decisions`, each committed with its `Change` into a
`tests.fakes.memory_store.MemoryStore`; the fake clock moves to the job's durable timers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobs.config.inventory import Cluster, Inventory
from jobs.config.settings import Settings
from jobs.procedures import procedure_for
from jobs.rules import decisions, escalation
from jobs.rules.change import Change
from jobs.rules.events import Event, EventKind
from jobs.rules.model import Decision, Job, State, Step
from jobs.rules.outputs import StepOut
from jobs.rules.timer_names import ESCALATE, REMINDER, parse_member
from jobs.rules.transitions import apply_result, clone, remind, start_step, sync_timers
from jobs.steps.base import (
    AskApproval,
    AskOperator,
    Fail,
    Poll,
    StepContext,
    StepResult,
)
from jobs.store.ports import FENCED, Snapshot
from tests.fakes.appliance import FakeCluster
from tests.fakes.builders import make_settings, write_inventory
from tests.fakes.clock import FakeClock
from tests.fakes.memory_store import MemoryStore

RUNNING = "9.1R17 (build 27583)"
TARGET = "9.1R18"
TARGET_BUILD = "9.1R18 (build 29865)"


@dataclass
class Harness:
    """One job on one fake cluster, moved by the real rules and committed to a `MemoryStore`.

    `job` is the job as last committed. A test may edit it to arrange a scenario; the edits
    are written to the store before the next `run`, `apply` or decision (as a test would
    edit the job's hash).
    """

    job: Job
    cluster: Cluster
    inventory: Inventory
    fake: FakeCluster
    settings: Settings
    clock: FakeClock
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    results: list[tuple[Step, StepResult]] = field(default_factory=list)
    on_checkpoint: Callable[[dict[str, Any]], None] | None = None
    store: MemoryStore = field(init=False)
    _written: dict[str, str] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.store = MemoryStore(self.clock)
        self._snapshot()

    # -- what happened ---------------------------------------------------------------------
    def events(self, kind: EventKind | None = None) -> list[Event]:
        """The job's events as committed (optionally of one kind), oldest first."""
        return self.store.events_of(self.job.id, kind)

    @property
    def progress(self) -> list[str]:
        """Progress lines committed so far (from `ctx.progress` and from `Poll.progress`)."""
        return [str(e.data["text"]) for e in self.events(EventKind.PROGRESS)]

    # -- the runner's part -------------------------------------------------------------------
    async def run(self, step: Step | None = None) -> StepResult:
        """Run a step and return its result, not yet applied (`apply` commits it).

        Without `step`, the job's current step runs the way the runner runs it: not when
        the runner would skip the job (settled, or waiting on a human), and started first
        (`jobs.rules.transitions.start_step`, committed) unless it waits on a timer. With
        `step`, that step runs on the job as it is, nothing started: a probe.
        """
        snap = self._snapshot()
        job = snap.job
        if step is None:
            step = job.step
            why = "it is settled" if job.settled else "a human is asked" if job.open_gate() else ""
            assert not why, f"the runner would not run {step.value} now: {why}"
            if job.state is not State.WAITING:
                new, change = clone(job), Change()
                start_step(new, change, self.clock.now())
                sync_timers(new, change, self.clock.now(), self.settings)
                self._commit(snap, new, change)
        result = await procedure_for(job).spec(step).run(self._ctx(snap, step))
        self.results.append((step, result))
        return result

    def apply(self, result: StepResult) -> Change:
        """Apply a step's result to the job's current step with
        `jobs.rules.transitions.apply_result`, as the runner does, and commit it."""
        snap = self._snapshot()
        new = clone(snap.job)
        change = apply_result(new, result, self.clock.now(), self.settings)
        self._commit(snap, new, change)
        return change

    def wake(self) -> str:
        """The timer tick: move the fake clock to the job's next durable timer and fire it.

        A reminder or an escalation is posted as the runner posts it (`remind`,
        `jobs.rules.escalation.escalate`); after a poll, settle or start timer the step is
        due (`run` it). Returns the timer's kind.
        """
        snap = self._snapshot()
        job = snap.job
        timers = self.store.timers_of(job.id)
        assert timers, f"no durable timer for {job.id} ({job.state.value} at {job.step.value})"
        member, due = min(timers.items(), key=lambda kv: kv[1])
        if member == job.wake_timer and job.wake_at is not None:
            due = max(due, job.wake_at)  # the zset keeps whole milliseconds
        self.clock.advance(max(0.0, due - self.clock.now()))
        del self.store.timers[member]
        kind = parse_member(member)[1]
        if kind == REMINDER and member == job.reminder_timer:
            new, change = clone(job), Change()
            remind(new, change, self.clock.now(), self.settings)
            self._commit(snap, new, change, (*FENCED, "reminder_timer"))
        elif kind == ESCALATE:
            new = clone(job)
            esc = escalation.escalate(new, self.clock.now(), self.settings)
            if esc is not None:
                self._commit(snap, new, esc, FENCED)
        return kind

    def wait(self) -> None:
        """After a `Poll`: fire timers until the job's own timer fired (reminders due
        before it are posted on the way)."""
        while self.wake() == REMINDER:
            pass

    # -- the humans' part --------------------------------------------------------------------
    def decide_open(self, decision: Decision, user: str = "UAPPROVER") -> Change:
        """Decide the open gate 5 s later through `jobs.rules.decisions` (approve, reject or
        confirm), as the service does; a refusal raises its `EngineError`."""
        snap = self._snapshot()
        gate = snap.job.open_gate()
        assert gate is not None, "no open gate"
        self.clock.advance(5)
        decide = {
            Decision.APPROVED: decisions.approve,
            Decision.REJECTED: decisions.reject,
            Decision.CONFIRMED: decisions.confirm,
        }[decision]
        new = clone(snap.job)
        change = decide(new, gate.id, user, self.clock.now(), self.settings)
        self._commit(snap, new, change, decisions.DECISION_FIELDS)
        return change

    def abort(self, user: str = "UREQ") -> Change:
        """`/pps abort` through `jobs.rules.decisions.abort`."""
        snap = self._snapshot()
        new = clone(snap.job)
        change = decisions.abort(new, user, self.clock.now(), self.settings)
        self._commit(snap, new, change, decisions.DECISION_FIELDS)
        return change

    async def drive(
        self,
        operator: Callable[[Harness, AskOperator], None] | None = None,
        max_runs: int = 2000,
    ) -> StepResult:
        """Run until the job settles or a step fails, approving every gate; `operator` acts
        on each AskOperator before it is confirmed; after a Poll the clock moves to the
        job's next timer. Returns the last step result."""
        for _ in range(max_runs):
            result = await self.run()
            self.apply(result)
            if isinstance(result, Fail) or self.job.settled:
                return result
            if isinstance(result, AskApproval):
                self.decide_open(Decision.APPROVED)
            elif isinstance(result, AskOperator):
                if operator is None:
                    raise AssertionError(f"unexpected AskOperator: {result}")
                operator(self, result)
                self.decide_open(Decision.CONFIRMED, "UOPERATOR")
            elif isinstance(result, Poll):
                self.wait()
        raise AssertionError("procedure did not finish")

    # -- plumbing ------------------------------------------------------------------------
    def _snapshot(self) -> Snapshot:
        """The job as stored, after writing the edits a test made to `job`."""
        if self.job.to_hash() != self._written:
            self.store.put(self.job)
            self._written = self.job.to_hash()
        snap = self.store.read(self.job.id)
        assert snap is not None
        return snap

    def _commit(
        self, snap: Snapshot, new: Job, change: Change, expect: Iterable[str] = FENCED
    ) -> None:
        assert self.store.commit_now(snap, new, change, expect), "commit refused"
        self.job = new
        self._written = new.to_hash()

    def _ctx(self, snap: Snapshot, step: Step) -> StepContext:
        """The step's context: checkpoints and progress commit as the runner commits them."""

        async def checkpoint(outputs: StepOut) -> None:
            fields = outputs.model_dump(exclude_unset=True)
            if self.on_checkpoint:
                self.on_checkpoint(fields)
            self.checkpoints.append(fields)
            new = clone(snap.job)
            new.outputs.merge(outputs)
            self._commit(snap, new, Change())
            ctx.job.outputs.merge(outputs)

        async def progress(text: str) -> None:
            change = Change()
            change.event(EventKind.PROGRESS, step=snap.job.step.value, text=text)
            self._commit(snap, clone(snap.job), change)

        view = clone(snap.job)
        view.step = step  # a probe sees the step it runs (its row of the table)
        ctx = StepContext(
            job=view,
            cluster=self.cluster,
            inventory=self.inventory,
            appliance=self.fake,
            settings=self.settings,
            clock=self.clock,
            checkpoint=checkpoint,
            progress=progress,
            procedure=procedure_for(snap.job),
        )
        return ctx


def new_harness(
    tmp_path: Path,
    mode: str = "standalone",
    *,
    vip: bool = False,
    manual: list[str] | None = None,
    window: str | None = None,
    versions: tuple[str, ...] = ("9.1R17", "9.1R18", "9.1R16"),
    catalogue_sha: dict[str, str] | None = None,
    fake_kw: dict[str, Any] | None = None,
    settings_kw: dict[str, Any] | None = None,
    job_kw: dict[str, Any] | None = None,
) -> Harness:
    """A job on a FakeCluster shaped like cluster `c1` of a fresh inventory in `tmp_path`."""
    inv = write_inventory(
        tmp_path,
        mode,
        vip=vip,
        manual=manual,
        window=window,
        versions=versions,
        catalogue_sha=catalogue_sha,
    )
    cluster = inv.clusters["c1"]
    clock = FakeClock()
    fkw: dict[str, Any] = {
        "build": RUNNING,
        "packages": {"pps-9.1R18-package.pkg": TARGET_BUILD},
        "sessions": 412,
    }
    fkw.update(fake_kw or {})
    fake = FakeCluster.for_cluster(cluster, clock, **fkw)
    jkw: dict[str, Any] = {"id": "J-0001", "cluster": "c1", "target": TARGET}
    jkw.update(job_kw or {})
    job = Job(requester="UREQ", **jkw)
    job.created_at = clock.now()
    return Harness(
        job, cluster, inv, fake, make_settings(tmp_path, **(settings_kw or {})), clock
    )
