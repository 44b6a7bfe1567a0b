"""`/pps rollback` end to end: JobService + worker + the PPS client + the simulator (real
HTTP) + Redis, on each cluster mode, with its gates, faults and the operator path.

Real time, shrunk (simulated reboots of 0.3 s, 0.1 s polls, 0.3 s settle). Each run asserts
the writes every node received, from the simulator's own log: one disable, one rollback,
one enable at most.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bot.render.card import card
from bot.render.summary import dry_run_plan, final_summary
from jobs.rules.events import EventKind
from jobs.rules.model import GateKind, Job, State, Step

StartStack = Any
RUNNING, ROLLBACK = "9.1R17 (build 27583)", "9.1R16 (build 26213)"
EXPORTS = ["export=system_config:200", "export=user_config:200"]
ONCE = [*EXPORTS, "login_permission=false:200", f"rollback={ROLLBACK}:202",
        "login_permission=true:200"]


async def _happy(st: Any, cluster: str) -> Job:
    job = await st.rollback(cluster)
    await st.approve_at(job.id, Step.GATE_DISABLE)
    await st.approve_at(job.id, Step.GATE_ENABLE)
    return await st.until(job.id, lambda j: j.terminal)


def _header(message: Any) -> str:
    return str(message.blocks[0]["text"]["text"])


async def test_standalone_rollback(sim_stack: StartStack) -> None:
    st = await sim_stack({"lab": {"mode": "standalone", "nodes": ["lab-1"]}})
    done = await _happy(st, "lab")
    assert done.state is State.SUCCEEDED and done.settled, done.error
    assert done.target == ROLLBACK and done.procedure == "rollback"
    assert st.builds("lab") == [ROLLBACK]
    assert st.sim.cluster("lab").nodes[0].rollback_build == RUNNING  # partitions swapped
    assert st.sim.cluster("lab").login_permission is True
    assert st.writes("lab") == {"lab-1": ONCE}
    finished = (await st.events(done.id, EventKind.FINISHED))[0]
    assert finished["summary"]["builds_before"] == {"lab-1": RUNNING}
    assert finished["summary"]["builds_after"] == {"lab-1": ROLLBACK}
    assert _header(card(done)).startswith(f"lab: rollback to {ROLLBACK}"), _header(card(done))
    assert _header(final_summary(done, finished)) == f"lab rolled back to {ROLLBACK}"


async def test_active_passive_rollback_on_the_active_node_vip_flips_and_returns(
    sim_stack: StartStack,
) -> None:
    st = await sim_stack({"east": {"mode": "active-passive", "nodes": ["east-a", "east-b"]}})
    done = await _happy(st, "east")
    assert done.state is State.SUCCEEDED and done.settled, done.error
    assert st.builds("east") == [ROLLBACK, ROLLBACK]
    # The rollback went to the active node; logins were switched through the VIP (east-a).
    assert st.writes("east") == {"east-a": ONCE, "east-b": []}
    vip_moves = [t for _, t in st.sim.cluster("east").events if t.startswith("vip:")]
    assert vip_moves == ["vip: east-a -> east-b", "vip: east-b -> east-a"]
    progress = [p["text"] for p in await st.events(done.id, EventKind.PROGRESS)]
    assert any("VIP" in t and "east-b" in t for t in progress), progress
    assert done.outputs.rollback_node == "east-a"
    gate = (await st.events(done.id, EventKind.GATE_OPENED))[0]["evidence"]
    assert gate["rollback_to"] == ROLLBACK and gate["sessions"] == 412
    assert any(ROLLBACK in line and "412" not in line for line in gate["summary"])
    assert any("412 active sessions will be cut" in line for line in gate["summary"])


async def test_active_active_rollback_three_nodes_follow(sim_stack: StartStack) -> None:
    st = await sim_stack({"mesh": {"mode": "active-active", "nodes": ["m-1", "m-2", "m-3"]}})
    done = await _happy(st, "mesh")
    assert done.state is State.SUCCEEDED and done.settled, done.error
    assert st.builds("mesh") == [ROLLBACK] * 3
    assert st.writes("mesh") == {"m-1": ONCE, "m-2": [], "m-3": []}
    reboots = [t for _, t in st.sim.cluster("mesh").events if t.endswith("rebooting")]
    assert reboots == ["m-1: rebooting", "m-2: rebooting", "m-3: rebooting"]


async def test_rejected_disable_gate_cancels_and_changes_nothing(sim_stack: StartStack) -> None:
    st = await sim_stack({"lab": {"mode": "standalone", "nodes": ["lab-1"]}})
    job = await st.rollback("lab")
    gate = await st.gate_at(job.id, Step.GATE_DISABLE)
    await st.service.reject(job.id, gate, st.approver)
    done = await st.until(job.id, lambda j: j.settled)
    assert done.state is State.CANCELLED and not done.logins_disabled
    assert st.builds("lab") == [RUNNING]
    assert st.sim.cluster("lab").login_permission is True
    assert st.writes("lab") == {"lab-1": EXPORTS}
    assert await st.service.active_for_cluster("lab") is None  # the lock is released


async def test_rejected_enable_gate_holds_with_logins_off_and_reminders(
    sim_stack: StartStack,
) -> None:
    st = await sim_stack(
        {"lab": {"mode": "standalone", "nodes": ["lab-1"]}}, PPS_REMINDER_SECONDS=0.3
    )
    job = await st.rollback("lab")
    await st.approve_at(job.id, Step.GATE_DISABLE)
    gate = await st.gate_at(job.id, Step.GATE_ENABLE)
    assert st.builds("lab") == [ROLLBACK]
    await st.service.reject(job.id, gate, st.approver)
    held = await st.until(job.id, lambda j: j.state is State.HELD)
    assert held.logins_disabled and "rejected" in held.held_reason
    assert st.sim.cluster("lab").login_permission is False
    await st.until(job.id, lambda j: j.open_gate() is not None and j.open_gate().id != gate)
    reminders: list[dict[str, Any]] = []
    for _ in range(100):  # two reminders at 0.3 s apart
        reminders = await st.events(job.id, EventKind.REMINDER)
        if len(reminders) >= 2:
            break
        await asyncio.sleep(0.05)
    assert len(reminders) >= 2 and "disabled since" in reminders[0]["text"]
    assert (await st.service.get(job.id)).state is State.HELD  # still held, never ended
    await st.approve_at(job.id, Step.GATE_ENABLE)
    done = await st.until(job.id, lambda j: j.settled)
    assert done.state is State.SUCCEEDED and not done.logins_disabled
    assert st.sim.cluster("lab").login_permission is True
    assert st.writes("lab") == {"lab-1": ONCE}


# -- the operator-assisted path -------------------------------------------------------------


async def test_manual_rollback_listed_in_the_inventory(sim_stack: StartStack) -> None:
    st = await sim_stack(
        {"east": {"mode": "active-passive", "nodes": ["east-a", "east-b"]}},
        {"east": {"manual": ["rollback"]}},
    )
    job = await st.rollback("east")
    await st.approve_at(job.id, Step.GATE_DISABLE)
    gate = await st.gate_at(job.id, Step.ROLLBACK, GateKind.CONFIRM)
    manual = (await st.events(job.id, EventKind.MANUAL))[-1]
    assert "manual" in manual["reason"] and "east-a" in manual["instructions"]
    assert "Maintenance > System > Platform" in manual["instructions"]
    assert ROLLBACK in manual["instructions"]
    await st.sim.console_rollback("east", "east-a")  # the operator's click in the console
    await st.service.confirm(job.id, gate, st.approver)
    await st.approve_at(job.id, Step.GATE_ENABLE)
    done = await st.until(job.id, lambda j: j.terminal)
    assert done.state is State.SUCCEEDED and done.settled, done.error
    assert done.outputs.rollback_by == "operator"
    assert st.builds("east") == [ROLLBACK, ROLLBACK]
    no_call = [*EXPORTS, "login_permission=false:200", "login_permission=true:200"]
    assert st.writes("east") == {"east-a": no_call, "east-b": []}  # never called the API


async def test_rollback_call_answering_501_goes_operator_assisted(sim_stack: StartStack) -> None:
    st = await sim_stack(
        {"lab": {"mode": "standalone", "nodes": ["lab-1"], "faults": {"rollback_status": 501}}}
    )
    job = await st.rollback("lab")
    await st.approve_at(job.id, Step.GATE_DISABLE)
    first = await st.gate_at(job.id, Step.ROLLBACK, GateKind.CONFIRM)
    manual = (await st.events(job.id, EventKind.MANUAL))[-1]
    assert "does not support" in manual["reason"] and "501" in manual["reason"]
    await st.service.confirm(job.id, first, st.approver)  # clicked, but nothing was done
    second = await st.gate_at(job.id, Step.ROLLBACK, GateKind.CONFIRM)
    assert second != first
    saw = (await st.events(job.id, EventKind.MANUAL))[-1].get("saw", "")
    assert "no sign of the rollback" in saw and RUNNING in saw
    await st.sim.console_rollback("lab", "lab-1")
    await st.service.confirm(job.id, second, st.approver)
    await st.approve_at(job.id, Step.GATE_ENABLE)
    done = await st.until(job.id, lambda j: j.terminal)
    assert done.state is State.SUCCEEDED and done.settled, done.error
    assert st.builds("lab") == [ROLLBACK]
    assert st.writes("lab") == {
        "lab-1": [*EXPORTS, "login_permission=false:200", f"rollback={ROLLBACK}:501",
                  "login_permission=true:200"]
    }


# -- refusals ------------------------------------------------------------------------------


async def test_rollback_refused_fails_with_the_enable_gate_offered(sim_stack: StartStack) -> None:
    st = await sim_stack(
        {"mesh": {"mode": "active-active", "nodes": ["m-1", "m-2"],
                  "faults": {"rollback_status": 500}}}
    )
    job = await st.rollback("mesh")
    await st.approve_at(job.id, Step.GATE_DISABLE)
    failed = await st.until(job.id, lambda j: j.state is State.FAILED)
    assert "refused the rollback" in failed.error and "500" in failed.error, failed.error
    assert failed.logins_disabled
    assert (await st.events(job.id, EventKind.LOGINS_DISABLED_ALERT))
    await st.approve_at(job.id, Step.GATE_ENABLE)
    done = await st.until(job.id, lambda j: j.settled)
    assert done.state is State.FAILED and st.builds("mesh") == [RUNNING, RUNNING]
    assert st.writes("mesh") == {
        "m-1": [*EXPORTS, "login_permission=false:200", f"rollback={ROLLBACK}:500",
                "login_permission=true:200"],
        "m-2": [],
    }


async def test_cluster_without_a_rollback_partition_is_refused_at_preflight(
    sim_stack: StartStack,
) -> None:
    st = await sim_stack(
        {"east": {"mode": "active-passive",
                  "nodes": ["east-a", {"name": "east-b", "rollback_build": None}]}}
    )
    job = await st.rollback("east")
    done = await st.until(job.id, lambda j: j.settled)
    assert done.state is State.FAILED and not done.logins_disabled
    assert "no rollback partition on east-b" in done.error, done.error
    assert st.writes("east") == {"east-a": [], "east-b": []}  # nothing was written
    assert await st.service.active_for_cluster("east") is None


async def test_dry_run_shows_the_plan_and_changes_nothing(sim_stack: StartStack) -> None:
    st = await sim_stack({"east": {"mode": "active-passive", "nodes": ["east-a", "east-b"]}})
    job = await st.rollback("east", dry_run=True)
    done = await st.until(job.id, lambda j: j.settled)
    assert done.state is State.SUCCEEDED and done.target == ROLLBACK, done.error
    plan_event = (await st.events(job.id, EventKind.PLAN))[0]
    steps = [row["step"] for row in plan_event["plan"]["steps"]]
    assert steps[5] == Step.ROLLBACK.value and Step.INSTALL.value not in steps
    plan = plan_event["plan"]
    assert plan["target"] == ROLLBACK and plan["acting_node"] == "east-a"
    notes = {row["step"]: row["note"] for row in plan_event["plan"]["steps"]}
    assert "east-a boots its rollback partition" in notes["rollback"]
    shown = dry_run_plan(done, plan_event)
    assert _header(shown) == f"Rollback dry run {job.id}: east → {ROLLBACK}"
    assert "/pps rollback east" in str(shown.blocks[-1])
    assert st.writes("east") == {"east-a": [], "east-b": []}
    assert st.builds("east") == [RUNNING, RUNNING]
