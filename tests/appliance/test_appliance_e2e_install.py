"""End to end against the simulator (issue 9.5): an install lost in transit is read, not
resent, and sent a second time only after an operator's confirm; a proxy's 502/504 while
the upgrade starts is recognised as an upgrade under way. The simulator's write log counts
every install the nodes received (status 0: the connection was reset, no answer)."""

from __future__ import annotations

import pytest

from jobs.rules.events import EventKind
from jobs.rules.model import GateKind, State, Step
from tests.appliance.appliance_e2e import TARGET, Start, builds, e2e

__all__ = ["e2e"]  # the fixture, imported from the harness

AP = {"mode": "active-passive", "nodes": ["east-a", "east-b"]}


async def test_install_lost_in_transit_is_sent_again_only_after_a_confirm(e2e: Start) -> None:
    run = await e2e({"east": {**AP, "faults": {"install_lost": 1}}})
    job = await run.create("east")
    await run.approve_at(job.id, Step.GATE_DISABLE)
    gate = await run.gate_at(job.id, Step.INSTALL, GateKind.CONFIRM)
    c = run.sim.cluster("east")
    assert [(e.node, e.status) for e in c.log if e.call == "install"] == [("east-a", 0)]
    manual = (await run.events(job.id, EventKind.MANUAL))[-1]
    assert "connection reset" in manual["reason"], manual
    assert manual["saw"].startswith("east-a runs 9.1R17 (build 27583)"), manual
    asked = await run.service.get(job.id)
    line = asked.step_record(Step.INSTALL).detail
    assert "no sign of the install" in line, line  # what the card shows
    await run.service.confirm(job.id, gate, run.approver)
    await run.approve_at(job.id, Step.GATE_ENABLE)
    done = await run.until(job.id, lambda j: j.terminal)
    assert done.state is State.SUCCEEDED and done.settled, done.error
    assert builds(run, "east") == [TARGET, TARGET]
    assert run.writes("east")["east-a"] == [
        "export=system_config:200",
        "export=user_config:200",
        "login_permission=false:200",
        f"install={TARGET}:0",  # lost: the node never acted on it
        f"install={TARGET}:202",  # the one that installed, after the confirm
        "login_permission=true:200",
    ]


@pytest.mark.parametrize("status", [502, 504])
async def test_proxy_5xx_while_the_upgrade_starts_is_watched_not_refused(
    e2e: Start, status: int
) -> None:
    """Before: "east-a refused the install: HTTP 502" failed the job while it upgraded."""
    run = await e2e({"east": {**AP, "faults": {"install_proxy_status": status}}})
    job = await run.create("east")
    await run.approve_at(job.id, Step.GATE_DISABLE)
    await run.approve_at(job.id, Step.GATE_ENABLE)
    done = await run.until(job.id, lambda j: j.terminal)
    assert done.state is State.SUCCEEDED and done.settled, done.error
    assert builds(run, "east") == [TARGET, TARGET]
    assert [e.status for e in run.sim.cluster("east").log if e.call == "install"] == [status]
    line = done.step_record(Step.INSTALL).detail
    assert f"HTTP {status}" in line and line.endswith("watching"), line
    progress = [p["text"] for p in await run.events(job.id, EventKind.PROGRESS)]
    assert any(t.startswith("No clear answer to the install") for t in progress), progress
