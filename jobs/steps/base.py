"""The contract between the step implementations and the runner.

A step is `async def run(ctx: StepContext) -> StepResult`. It reads what it needs from
`ctx` (job snapshot, cluster, appliance, settings, clock), never sleeps, and returns one
of the results below; the runner (jobs/worker/step_runner.py) applies it to Redis in one fenced,
atomic commit. A step re-entered after a crash runs its check first: before an appliance
side effect it records its intent with `await ctx.checkpoint(<its output model>)` (a fenced
commit of outputs), so a re-run can tell "not yet sent" from "sent, maybe applied".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from jobs.appliance.protocol import Appliance
from jobs.config.clock import Clock
from jobs.config.inventory import Cluster, Inventory
from jobs.config.settings import Settings

if TYPE_CHECKING:
    from jobs.procedures.spec import Procedure, StepSpec
from jobs.rules.model import Job
from jobs.rules.outputs import StepOut


@dataclass(frozen=True)
class Advance:
    """The step is done: merge `outputs` (the step's own model) into the job; next step."""

    outputs: StepOut | None = None
    detail: str = ""


@dataclass(frozen=True)
class Poll:
    """Not done yet: come back to this step after `after` seconds (state `waiting`)."""

    after: float
    outputs: StepOut | None = None
    progress: str | None = None  # a thread line worth posting (node rebooted, VIP flipped)
    detail: str | None = None  # the step's line on the card while it waits (what was seen)


@dataclass(frozen=True)
class AskApproval:
    """Open an approval gate for this step (state `awaiting_approval`)."""

    evidence: dict[str, Any] = field(default_factory=dict)
    outputs: StepOut | None = None


@dataclass(frozen=True)
class AskOperator:
    """Operator-assisted: open a confirm gate with instructions; re-run after confirm."""

    instructions: str
    reason: str
    saw: str | None = None  # what verification saw last time, when asking again
    outputs: StepOut | None = None
    detail: str | None = None  # the step's line on the card while it waits (what was seen)


@dataclass(frozen=True)
class Fail:
    """The step failed. With logins disabled the runner keeps the enable gate offered."""

    error: str
    outputs: StepOut | None = None


StepResult = Advance | Poll | AskApproval | AskOperator | Fail


class Progress(Protocol):
    async def __call__(self, text: str) -> None: ...


@dataclass
class StepContext:
    """Everything a step may use. `checkpoint` raises `jobs.store.lease.LeaseLost` if fenced out."""

    job: Job
    cluster: Cluster
    inventory: Inventory
    appliance: Appliance
    settings: Settings
    clock: Clock
    checkpoint: Callable[[StepOut], Awaitable[None]]
    progress: Callable[[str], Awaitable[None]]
    procedure: Procedure  # the job's procedure table

    @property
    def spec(self) -> StepSpec:
        """The table row of the step being run."""
        return self.procedure.spec(self.job.step)


StepFn = Callable[[StepContext], Awaitable[StepResult]]
