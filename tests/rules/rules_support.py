"""`Flow`: one job moved by the rules alone (`jobs.rules.transitions`, `jobs.rules.decisions`),
each `Change` committed into a `MemoryStore` the way the runner and the service commit it.

No Redis, no sockets, no steps: a test says what a step answered (`Advance`, `Poll`, ...)
and what a human decided, and reads the job, its events, its timers and its lock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import pytest

from jobs.config.settings import Settings
from jobs.procedures import UPGRADE
from jobs.rules import decisions
from jobs.rules.change import Change
from jobs.rules.errors import EngineError
from jobs.rules.events import Event, EventKind
from jobs.rules.model import Job, State, Step
from jobs.rules.timer_names import parse_member
from jobs.rules.transitions import apply_result, clone, remind, start_step, sync_timers
from jobs.steps.base import Advance, AskApproval, StepResult
from jobs.store.ports import FENCED
from tests.fakes.clock import FakeClock
from tests.fakes.memory_store import MemoryStore

REQUESTER, APPROVER, OTHER = "UREQ", "UAPP", "UOTHER"
REMINDER_SECONDS = 600.0


def make_settings(**kw: Any) -> Settings:
    """Production timings, two-person rule on, no `.env` file."""
    base: dict[str, Any] = {
        "PPS_POLL_SECONDS": 10.0,
        "PPS_SETTLE_SECONDS": 300.0,
        "PPS_REMINDER_SECONDS": REMINDER_SECONDS,
        "PPS_TWO_PERSON_RULE": True,
    }
    base.update(kw)
    return Settings(_env_file=None, **base)


E = TypeVar("E", bound=EngineError)


def refused(f: Flow, decide: Callable[[], object], error: type[E]) -> E:
    """Run a decision that must be refused; check that it changed nothing."""
    before, events = f.job.to_hash(), len(f.store.events)
    with pytest.raises(error) as exc:
        decide()
    assert f.job.to_hash() == before and len(f.store.events) == events
    return exc.value


class Flow:
    """One job on cluster `c1`, moved by the rules; `job` is always the committed one."""

    def __init__(self, settings: Settings | None = None, **job_kw: Any) -> None:
        self.settings = settings or make_settings()
        self.clock = FakeClock()
        self.store = MemoryStore(self.clock)
        kw: dict[str, Any] = {"id": "J-0001", "cluster": "c1", "target": "9.1R18"}
        kw.update(job_kw)
        job = Job(requester=REQUESTER, created_at=self.clock.now(), **kw)
        self.store.put(job)
        self.job_id = job.id

    # -- reading -----------------------------------------------------------------------------
    @property
    def job(self) -> Job:
        snap = self.store.read(self.job_id)
        assert snap is not None
        return snap.job

    def events(self, kind: EventKind | None = None) -> list[Event]:
        return self.store.events_of(self.job_id, kind)

    def timer_kinds(self) -> dict[str, float]:
        """The job's durable timers by kind (poll, settle, start, reminder) -> due."""
        return {parse_member(m)[1]: due for m, due in self.store.timers_of(self.job_id).items()}

    @property
    def locked(self) -> bool:
        """Whether the job still holds its cluster."""
        return self.store.locks.get("c1") == self.job_id

    # -- moving ------------------------------------------------------------------------------
    def commit(self, fn: Callable[[Job], Change], expect: Iterable[str] = FENCED) -> Change:
        """Build the next version with `fn` on a copy and commit it with its Change."""
        snap = self.store.read(self.job_id)
        assert snap is not None
        new = clone(snap.job)
        change = fn(new)
        assert self.store.commit_now(snap, new, change, expect), "commit refused"
        return change

    def start(self) -> Change:
        """A worker starts (or re-enters) the current step: the runner's first commit."""

        def fn(job: Job) -> Change:
            change = Change()
            start_step(job, change, self.clock.now())
            sync_timers(job, change, self.clock.now(), self.settings)
            return change

        return self.commit(fn)

    def result(self, result: StepResult) -> Change:
        """The step answered `result`: the runner's second commit."""
        return self.commit(lambda job: apply_result(job, result, self.clock.now(), self.settings))

    def step(self, result: StepResult) -> Change:
        """Start the current step (unless it waits on a timer) and apply its `result`."""
        if self.job.state is not State.WAITING:
            self.start()
        return self.result(result)

    def remind(self) -> Change:
        """The reminder timer fires: the tick takes it out of the timers, the runner posts
        the reminder (`jobs.rules.transitions.remind`) and commits."""
        self.store.timers.pop(self.job.reminder_timer, None)

        def fn(job: Job) -> Change:
            change = Change()
            remind(job, change, self.clock.now(), self.settings)
            return change

        return self.commit(fn, (*FENCED, "reminder_timer"))

    def gate_id(self) -> str:
        gate = self.job.open_gate()
        assert gate is not None, f"no open gate at {self.job.step.value}"
        return gate.id

    def approve(self, user: str = APPROVER, gate_id: str | None = None) -> Change:
        gid = gate_id or self.gate_id()
        now = self.clock.now()
        return self.commit(
            lambda job: decisions.approve(job, gid, user, now, self.settings),
            decisions.DECISION_FIELDS,
        )

    def reject(self, user: str = APPROVER, gate_id: str | None = None) -> Change:
        gid = gate_id or self.gate_id()
        now = self.clock.now()
        return self.commit(
            lambda job: decisions.reject(job, gid, user, now, self.settings),
            decisions.DECISION_FIELDS,
        )

    def confirm(self, user: str = APPROVER, gate_id: str | None = None) -> Change:
        gid = gate_id or self.gate_id()
        now = self.clock.now()
        return self.commit(
            lambda job: decisions.confirm(job, gid, user, now, self.settings),
            decisions.DECISION_FIELDS,
        )

    def abort(self, user: str = REQUESTER) -> Change:
        now = self.clock.now()
        return self.commit(
            lambda job: decisions.abort(job, user, now, self.settings), decisions.DECISION_FIELDS
        )

    def later(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def to(self, step: Step) -> Flow:
        """Move along the happy path (every step advances, gates approved) until `step` is
        the current step, queued and not started."""
        assert UPGRADE.index(step) >= UPGRADE.index(self.job.step)
        while self.job.step is not step:
            self.later(1)
            if self.job.step in UPGRADE.gates:
                self.step(AskApproval(evidence={"summary": ["ok?"]}))
                self.approve()
            else:
                self.step(Advance(detail="ok"))
        return self
