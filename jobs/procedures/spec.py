"""What a procedure is: an ordered table of `StepSpec`s, one row per step, and every fact the
engine, the plan and the card need about that step. Everything else derives from the table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING

from jobs.rules.model import Step
from jobs.rules.timer_names import POLL

if TYPE_CHECKING:
    from jobs.steps.base import StepFn
    from jobs.steps.plan import PlanFacts


class OnAbort(StrEnum):
    """What `/pps abort` does while the job is at a step (DESIGN §1)."""

    CANCEL = "cancel"  # nothing changed on the appliance, or logins are back on: cancel
    ENABLE_GATE = "enable_gate"  # logins may be off: close the open gate, offer the enable gate
    # As ENABLE_GATE while the step is queued and has not started, else REFUSE_FIRMWARE.
    ENABLE_GATE_UNTIL_STARTED = "enable_gate_until_started"
    REFUSE_FIRMWARE = "refuse_firmware"  # firmware is changing: the cluster must finish
    REFUSE_ENABLING = "refuse_enabling"  # logins are being re-enabled: the job ends right after
    REFUSE_LOGINS_OFF = "refuse_logins_off"  # logins are off: approve the enable gate instead


class Logins(StrEnum):
    """What a step, once done, has done to user logins."""

    UNCHANGED = "unchanged"
    DISABLED = "disabled"
    ENABLED = "enabled"


@dataclass(frozen=True)
class StepSpec:
    """One row of a procedure table."""

    step: Step
    title: str
    run: StepFn
    gate: bool = False  # a human approval gate (the step only asks)
    side_effect: bool = False  # an appliance write: at most once per job
    manual: str | None = None  # its name in the inventory's `manual:` list (operator-assisted)
    logins_at_risk: bool = False  # a failure here may leave logins off: keep the enable gate
    on_abort: OnAbort = OnAbort.CANCEL
    logins: Logins = Logins.UNCHANGED
    wait: str = POLL  # the durable timer kind of a `Poll` result
    ends_dry_run: bool = False  # a dry run ends once this step is done
    note: Callable[[PlanFacts], str] | None = None  # its line in the plan


@dataclass(frozen=True)
class Procedure:
    """An ordered table of steps; `name` is stored on the job (`job.procedure`)."""

    name: str
    title: str  # how the card names it ("upgrade", "rollback")
    done: str  # the reason recorded when the last step succeeds
    rows: tuple[StepSpec, ...]
    # True: the target is a catalogue version chosen by the command. False: preflight finds
    # it on the appliances (a rollback goes to the build on the rollback partitions).
    target_from_catalogue: bool = True

    def __post_init__(self) -> None:
        steps = [r.step for r in self.rows]
        if len(set(steps)) != len(steps):
            raise ValueError(f"procedure {self.name}: a step appears twice")
        if self.rows[-1].gate:
            raise ValueError(f"procedure {self.name}: a gate cannot be the last step")

    @cached_property
    def _by_step(self) -> dict[Step, StepSpec]:
        return {r.step: r for r in self.rows}

    @property
    def steps(self) -> tuple[Step, ...]:
        """The steps in order."""
        return tuple(r.step for r in self.rows)

    def spec(self, step: Step) -> StepSpec:
        """The row of `step` (KeyError if the procedure has no such step)."""
        return self._by_step[step]

    def __contains__(self, step: object) -> bool:
        return step in self._by_step

    def title_of(self, step: Step) -> str:
        return self.spec(step).title

    def index(self, step: Step) -> int:
        """1-based position of a step (DESIGN §1 numbering)."""
        return self.steps.index(step) + 1

    def next(self, step: Step) -> Step | None:
        """The step after `step`, or None after the last one."""
        i = self.steps.index(step)
        return self.steps[i + 1] if i + 1 < len(self.steps) else None

    @property
    def first(self) -> Step:
        return self.rows[0].step

    @cached_property
    def enable_gate(self) -> Step:
        """The gate before the step that re-enables logins (offered on failure or abort)."""
        for row, nxt in zip(self.rows, self.rows[1:], strict=False):
            if row.gate and nxt.logins is Logins.ENABLED:
                return row.step
        raise ValueError(f"procedure {self.name} has no gate before enabling logins")

    @property
    def impls(self) -> dict[Step, StepFn]:
        """Step -> implementation (what the runner calls)."""
        return {r.step: r.run for r in self.rows}

    @property
    def gates(self) -> tuple[Step, ...]:
        return tuple(r.step for r in self.rows if r.gate)

    @property
    def side_effects(self) -> tuple[Step, ...]:
        return tuple(r.step for r in self.rows if r.side_effect)

