"""Step 8, settle: a durable wait of `PPS_SETTLE_SECONDS` after the last node rejoined."""

from __future__ import annotations

from jobs.rules.outputs import SettleOut
from jobs.steps.base import Advance, Poll, StepContext, StepResult
from jobs.steps.plan import fmt_duration, fmt_time


async def run(ctx: StepContext) -> StepResult:
    """Poll for the remaining time (the runner parks the job on a timer), then advance."""
    now = ctx.clock.now()
    rejoined = ctx.job.outputs.rejoined_at
    if rejoined is None:
        # The watch always records it; without it, start the wait now rather than skip it.
        return Poll(after=ctx.settings.PPS_SETTLE_SECONDS, outputs=SettleOut(rejoined_at=now))
    until = rejoined + ctx.settings.PPS_SETTLE_SECONDS
    remaining = until - now
    if remaining > 0:
        line = f"Waiting {fmt_duration(remaining)}, until {fmt_time(until)}"
        first = ctx.job.outputs.settle_until is None
        out = SettleOut(settle_until=until)
        return Poll(remaining, outputs=out, progress=line if first else None)
    return Advance(
        outputs=SettleOut(settled_at=now),
        detail=f"waited {fmt_duration(now - rejoined)} after the last rejoin",
    )
