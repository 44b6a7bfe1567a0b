"""How long one attempt of a step may run, and what an attempt cut off at that time becomes.

Pure. Appliance calls have their own deadlines (jobs/appliance); this bounds a whole
attempt (many calls, checkpoints, a transfer), so that no attempt holds its job, lease and
worker for long. Before the install a cut-off attempt fails the step (the runner keeps
logins flagged when they may be off). From the install on, an attempt never runs past the
reboot deadline: cut off before it, it becomes one more poll; at it, the step fails.
"""

from __future__ import annotations

from jobs.config.settings import Settings
from jobs.procedures import procedure_for
from jobs.rules.model import Job, Step
from jobs.steps.base import Fail, Poll, StepResult
from jobs.steps.common import reboot_deadline
from jobs.steps.plan import fmt_duration

# Transfers (package upload, configuration export) one attempt of a step may make: each
# adds PPS_TRANSFER_TIMEOUT_SECONDS to the step's budget.
TRANSFERS: dict[Step, int] = {Step.BACKUP: 2, Step.INSTALL: 1}
# Steps that read until the reboot deadline once the install was sent.
UNTIL_REBOOT_DEADLINE: frozenset[Step] = frozenset({Step.INSTALL, Step.WATCH_REBOOT})
LAST_LOOK_SECONDS = 1.0  # an attempt at or past the deadline still gets one quick read


def _took(seconds: float) -> str:
    return f"{seconds:.3g} s" if seconds < 60 else fmt_duration(seconds)


def _deadline(job: Job, settings: Settings) -> float | None:
    return reboot_deadline(job, settings) if job.step in UNTIL_REBOOT_DEADLINE else None


def attempt_budget(job: Job, settings: Settings, now: float) -> float:
    """Seconds the runner lets one attempt of the job's current step run."""
    budget = settings.PPS_STEP_TIMEOUT_SECONDS
    budget += TRANSFERS.get(job.step, 0) * settings.PPS_TRANSFER_TIMEOUT_SECONDS
    deadline = _deadline(job, settings)
    if deadline is not None:
        budget = min(budget, max(deadline - now, LAST_LOOK_SECONDS))
    return budget


def over_budget(job: Job, settings: Settings, now: float, budget: float) -> StepResult:
    """The result of an attempt cut off after `budget` seconds (`job` as the step left it:
    an install intent it checkpointed counts)."""
    procedure = procedure_for(job)
    title = procedure.spec(job.step).title if job.step in procedure else job.step.value
    took = _took(budget)
    deadline = _deadline(job, settings)
    if deadline is None:
        return Fail(f"{title} did not finish within {took}: the appliance did not answer in time")
    if now < deadline:
        return Poll(
            after=settings.PPS_POLL_SECONDS,
            progress=f"{title}: the appliance did not answer within {took}; reading again",
        )
    limit = _took(settings.PPS_REBOOT_TIMEOUT_SECONDS)
    return Fail(
        f"{title}: the appliance still did not answer at the reboot deadline ({limit} after "
        "the install); last calls cut off"
    )
