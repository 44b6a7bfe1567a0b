"""The whole procedure on stub steps: states, events, timers, side effects once each."""

from __future__ import annotations

from jobs.procedures import UPGRADE
from jobs.rules.events import EventKind
from jobs.rules.model import State, Step
from tests.engine.engine_support import APPROVER, Engine, Stubs


async def test_stub_procedure_runs_to_success(engine: Engine, stubs: Stubs) -> None:
    job = await engine.create("solo")
    assert job.id.startswith("J-") and job.state is State.QUEUED
    await engine.drain()
    job = await engine.job(job.id)
    assert (job.state, job.step) == (State.AWAITING_APPROVAL, Step.GATE_DISABLE)
    await engine.service.approve(job.id, await engine.gate(job.id), APPROVER)
    job = await engine.run_until(
        job.id, lambda j: j.step is Step.GATE_ENABLE and j.open_gate() is not None
    )
    assert job.logins_disabled
    await engine.service.approve(job.id, await engine.gate(job.id), APPROVER)
    job = await engine.run_until(job.id, lambda j: j.terminal)
    assert job.state is State.SUCCEEDED and job.settled
    assert stubs.effects == {"disable_logins": 1, "install": 1, "enable_logins": 1}
    fin = await engine.events(job.id, EventKind.FINISHED)
    assert len(fin) == 1
    summary = fin[0].data["summary"]
    assert summary["logins_disabled_seconds"] > 300  # settle wait included
    assert set(summary["durations"]) == {s.value for s in UPGRADE.steps}
    seqs = [e.seq for e in await engine.events(job.id)]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
