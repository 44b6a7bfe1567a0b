"""Step 8, settle: a durable wait of `PPS_SETTLE_SECONDS` after the last node rejoined."""

from __future__ import annotations

from jobs.steps.base import Advance, Poll, StepContext, StepResult
from jobs.steps.plan import fmt_duration, fmt_time


async def run(ctx: StepContext) -> StepResult:
    """Poll for the remaining time (the runner parks the job on a timer), then advance."""
    now = ctx.clock.now()
    rejoined = ctx.job.outputs.get("rejoined_at")
    if rejoined is None:
        # The watch always records it; without it, start the wait now rather than skip it.
        return Poll(after=ctx.settings.PPS_SETTLE_SECONDS, outputs={"rejoined_at": now})
    until = float(rejoined) + ctx.settings.PPS_SETTLE_SECONDS
    remaining = until - now
    if remaining > 0:
        line = f"Waiting {fmt_duration(remaining)}, until {fmt_time(until)}"
        first = "settle_until" not in ctx.job.outputs
        return Poll(remaining, outputs={"settle_until": until}, progress=line if first else None)
    return Advance(
        outputs={"settled_at": now},
        detail=f"waited {fmt_duration(now - float(rejoined))} after the last rejoin",
    )
