"""Steps 5 and 10: disable / enable all user logins, at most one write per job.

Check first (already as desired: done). The write goes through the login target of
DESIGN §4.7 after a checkpoint of the intent; a re-run that finds the intent recorded never
writes again. An unsupported write, a forced manual step, or a read-back that disagrees
turns the step operator-assisted: instructions, a confirm, then a verifying read. A write
that was sent but does not show yet is read again on the next polls (an appliance may
apply it with a delay) before a human is asked.
"""

from __future__ import annotations

from typing import Any

from jobs.appliance.protocol import VIP, ApplianceError, Unsupported
from jobs.rules.model import Decision, GateKind, Job, Step
from jobs.rules.outputs import LoginRecord, LoginsOut
from jobs.steps.base import Advance, AskOperator, Fail, Poll, StepContext, StepFn, StepResult
from jobs.steps.common import Failed, LoginRead, acting_node, label, read_logins
from jobs.steps.plan import fmt_time

# Re-reads of the login permission after a write before asking an operator.
VERIFY_POLLS = 3


def _word(enabled: bool) -> str:
    return "enabled" if enabled else "disabled"


def instructions(ctx: StepContext, enabled: bool, target: str) -> str:
    """What to click, where (KB12940 wording of the console)."""
    node = acting_node(ctx) if target == VIP else target
    url = ctx.cluster.node(node).url if node in ctx.cluster.node_names else ""
    where = f"{node} ({url}/admin)" if url else node
    button = "Enable All Users" if enabled else "Disable All Users"
    return (
        f"{'Enable' if enabled else 'Disable'} all user logins on {ctx.cluster.name}: in the "
        f"admin console of {where} open System > Status > Active Users and click {button}. "
        f"Then press the confirm button; the bot reads the login permission back."
    )


def make_step(step: Step, enabled: bool) -> StepFn:
    """The step function for DISABLE_LOGINS (enabled=False) or ENABLE_LOGINS (True)."""
    # This step's fields of `LoginsOut`: `<step>_sent_at`, `<step>_verify_polls`, ...
    sent_key = f"{step.value}_sent_at"
    polls_key = f"{step.value}_verify_polls"

    def out(**fields: Any) -> LoginsOut:
        return LoginsOut.model_validate(fields)

    def sent_at(job: Job) -> float | None:
        value: float | None = getattr(job.outputs, sent_key)
        return value

    def read_again(ctx: StepContext, saw: str) -> Poll | None:
        """Poll once more while the written permission may still be on its way."""
        polls = int(getattr(ctx.job.outputs, polls_key) or 0)
        if polls >= VERIFY_POLLS:
            return None
        return Poll(
            after=ctx.settings.PPS_POLL_SECONDS,
            outputs=out(**{polls_key: polls + 1}),
            progress=f"{saw}; reading again" if polls == 0 else None,
        )

    def done(ctx: StepContext, read: LoginRead, by: str) -> Advance:
        record = LoginRecord(enabled=enabled, via=label(read.target), by=by, at=ctx.clock.now())
        return Advance(
            outputs=out(**{step.value: record}),
            detail=f"user logins {_word(enabled)} (read via {label(read.target)})",
        )

    def ask(ctx: StepContext, target: str, reason: str, saw: str | None = None) -> AskOperator:
        return AskOperator(
            instructions=instructions(ctx, enabled, target), reason=reason, saw=saw
        )

    async def run(ctx: StepContext) -> StepResult:
        job = ctx.job
        read = await read_logins(ctx)
        if isinstance(read, Failed):
            return Fail(f"Cannot read the login permission: {read.message}")
        confirm = job.latest_gate(step, GateKind.CONFIRM)
        confirmed = confirm is not None and confirm.decision == Decision.CONFIRMED
        if read.users.login_permission == enabled:
            by = "operator" if confirmed else ("api" if sent_at(job) is not None else "already")
            return done(ctx, read, by)
        now_word = _word(read.users.login_permission)
        if confirmed:
            return ask(
                ctx,
                read.target,
                job.manual.get(step.value, "operator-assisted"),
                saw=f"login permission still {now_word} on {label(read.target)}",
            )
        manual = ctx.spec.manual
        if manual and manual in ctx.cluster.manual:
            return ask(ctx, read.target, f"the inventory lists '{manual}' as manual")
        sent = sent_at(job)
        if sent is not None:
            # The request went out before (then a crash or an error): never send it twice.
            at = fmt_time(sent)
            again = read_again(ctx, f"login permission still {now_word}")
            if again is not None:
                return again
            return ask(
                ctx,
                read.target,
                "a request was already sent",
                saw=f"request sent at {at}, login permission still {now_word}",
            )
        target = read.target
        await ctx.checkpoint(out(**{sent_key: ctx.clock.now(), f"{step.value}_target": target}))
        try:
            await ctx.appliance.set_login_permission(target, enabled)
        except Unsupported as exc:
            return ask(ctx, target, f"{label(target)} does not support this call ({exc.message})")
        except ApplianceError as exc:
            back = await read_logins(ctx)
            if isinstance(back, LoginRead) and back.users.login_permission == enabled:
                return done(ctx, back, "api")
            return ask(ctx, target, f"the request failed: {exc.message}")
        back = await read_logins(ctx)
        if isinstance(back, Failed):
            return read_again(ctx, f"cannot read back ({back.message})") or ask(
                ctx, target, "cannot read back", saw=back.message
            )
        if back.users.login_permission != enabled:
            saw = f"login permission still {_word(back.users.login_permission)}"
            again = read_again(ctx, saw)
            if again is not None:
                return again
            return ask(
                ctx,
                target,
                "read-back disagrees",
                saw=f"after the request, login permission still "
                f"{_word(back.users.login_permission)} on {label(back.target)}",
            )
        return done(ctx, back, "api")

    run.__name__ = step.value
    run.__doc__ = f"{step.value}: set user-login-permission to {enabled}."
    return run


disable_logins = make_step(Step.DISABLE_LOGINS, enabled=False)
enable_logins = make_step(Step.ENABLE_LOGINS, enabled=True)
