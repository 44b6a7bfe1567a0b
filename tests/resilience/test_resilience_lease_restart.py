"""The lease and the fence across a Redis restart: worker A is inside the install step (the
upload was accepted) when Redis dies; it stays down three leases, so A's lease has expired
when Redis returns from its AOF. A's heartbeat takes the lease back (the job's fence is still
A's), so no other worker can start the job meanwhile; A commits, the install is sent once,
and A logs no lost lease. (A stale fence still loses: tests/engine/test_engine_store.py.)

Prints `lease-restart ...`: install runs, refusals, lost-lease warnings, the probe's result.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
from resilience_support import Recorder, Rig

from jobs.procedures import UPGRADE
from jobs.rules.model import State, Step
from jobs.steps.base import StepContext, StepFn, StepResult
from jobs.store.lease import Lease
from jobs.worker import step_runner as runner_mod

StartRig = Callable[..., Awaitable[Rig]]


@pytest.mark.slow
async def test_resilience_lease_expires_while_redis_is_down(
    rig: StartRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner_log = Recorder()
    monkeypatch.setattr(runner_mod, "log", runner_log)
    holder: dict[str, Rig] = {}
    installs: list[tuple[int, float]] = []  # (fence the run started under, when)
    inside = 0
    overlapped = 0
    probes: list[bool] = []

    async def install(ctx: StepContext) -> StepResult:
        nonlocal inside, overlapped
        inside += 1
        overlapped = max(overlapped, inside)
        try:
            installs.append((ctx.job.fence, time.monotonic()))
            result = await UPGRADE.impls[Step.INSTALL](ctx)
            if len(installs) == 1:  # the first run: Redis dies before its commit
                r = holder["rig"]
                lease = r.settings.PPS_LEASE_SECONDS
                r.server.kill()
                await asyncio.sleep(3 * lease)
                await r.server.start()
                await asyncio.sleep(3 * lease)  # heartbeats (every lease / 3) run meanwhile
                # A's heartbeat has taken its expired lease back: nobody else gets the job.
                probe = Lease(r.redis, r.keys, ctx.job.id, lease)
                probes.append(await probe.acquire())
            return result
        finally:
            inside -= 1

    steps: dict[Step, StepFn] = {**UPGRADE.impls, Step.INSTALL: install}
    r = await rig(workers=2, steps=steps)
    holder["rig"] = r
    job = await r.create("east")
    done = await r.until(job.id, lambda j: j.terminal, within=30)
    effects = r.effects("east")
    refused = runner_log.count("refused")
    lost = r.log.count("lease lost")
    install_rec = done.step_record(Step.INSTALL)
    print(
        f"lease-restart final={done.state.value} install_runs={len(installs)} "
        f"fences={[f for f, _ in installs]} overlapped={overlapped} refused_commits={refused} "
        f"lease_lost_warnings={lost} probe_got_lease={probes} disable={effects[0]} "
        f"install={effects[1]} "
        f"enable={effects[2]} install_detail={install_rec.detail!r}"
    )
    assert done.state is State.SUCCEEDED, done.error
    assert effects == (1, 1, 1)
    assert probes == [False], "the lease was free after the restart: another worker could run"
    assert len(installs) == 1 and overlapped == 1 and refused == 0
    assert lost == 0, "A kept its lease: no 'lease lost' warning"
