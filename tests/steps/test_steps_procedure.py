"""The whole procedure on the fake cluster, applied through the real transitions: every
mode, re-runs after lost commits, the reboot deadline, and operator-assisted runs."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from jobs.appliance.protocol import VIP
from jobs.procedures import UPGRADE
from jobs.rules.events import EventKind
from jobs.rules.model import Decision, GateKind, State, Step, StepStatus
from jobs.rules.timer_names import ESCALATE, REMINDER
from jobs.steps.base import Advance, AskApproval, AskOperator, Fail, Poll
from tests.fakes.harness import TARGET_BUILD, Harness

MakeHarness = Callable[..., Harness]
CASES = [("standalone", False), ("active-passive", True), ("active-active", False)]


def side_effects(h: Harness) -> dict[str, int]:
    """API writes made, by kind (operator console actions are not API calls)."""
    out = {"disable": 0, "enable": 0, "install": 0, "export": 0}
    for c in h.fake.calls:
        if c["method"] == "set_login_permission":
            out["enable" if c["arg"] == "enabled=True" else "disable"] += 1
        elif c["method"] == "install":
            out["install"] += 1
        else:
            out["export"] += 1
    return out


@pytest.mark.parametrize(("mode", "vip"), CASES)
async def test_full_procedure_each_side_effect_once(
    make_harness: MakeHarness, mode: str, vip: bool
) -> None:
    h = make_harness(mode, vip=vip)
    result = await h.drive()
    assert isinstance(result, Advance), result
    assert h.job.state == State.SUCCEEDED
    assert side_effects(h) == {"disable": 1, "enable": 1, "install": 1, "export": 2}
    assert h.fake.login_permission is True
    assert {h.fake.build_of(n) for n in h.cluster.node_names} == {TARGET_BUILD}
    assert [s for s, r in h.results if isinstance(r, AskApproval)] == [
        Step.GATE_DISABLE,
        Step.GATE_ENABLE,
    ]
    for n in h.cluster.node_names:
        assert f"{n} stopped answering (rebooting)" in "\n".join(h.progress)
    # Settle started at the last rejoin and lasted the setting.
    assert h.job.outputs.settled_at - h.job.outputs.rejoined_at >= 300
    installed = [c["node"] for c in h.fake.calls if c["method"] == "install"]
    assert installed == [h.cluster.node_names[0]]


async def test_active_passive_vip_flip_is_observed(make_harness: MakeHarness) -> None:
    h = make_harness("active-passive", vip=True)
    result = await h.drive()
    assert isinstance(result, Advance)
    lines = "\n".join(h.progress).splitlines()
    flips = [line for line in lines if line.startswith("VIP")]
    assert flips == ["VIP moved from east-a to east-b", "VIP back on east-a"]
    assert lines.index("VIP back on east-a") < lines.index("east-b stopped answering (rebooting)")
    assert [(f["from"], f["to"]) for f in h.job.outputs.watch["vip"]["flips"]] == [
        ("east-a", "east-b"),
        ("east-b", "east-a"),
    ]
    assert h.fake.count("set_login_permission", VIP) == 2


@pytest.mark.parametrize(("mode", "vip"), CASES)
async def test_every_step_run_twice_still_one_side_effect_each(
    make_harness: MakeHarness, mode: str, vip: bool
) -> None:
    """Each step's first result is thrown away (a worker died before its commit; its
    checkpoints survived), then the step runs again and that result is applied."""
    h = make_harness(mode, vip=vip)
    for _ in range(500):
        await h.run()  # lost
        result = await h.run()
        h.apply(result)
        if isinstance(result, Fail) or h.job.state == State.SUCCEEDED:
            break
        if isinstance(result, AskApproval):
            h.decide_open(Decision.APPROVED)
        elif isinstance(result, Poll):
            h.wait()
    assert h.job.state == State.SUCCEEDED, h.job.error
    assert side_effects(h)["disable"] == 1
    assert side_effects(h)["enable"] == 1
    assert side_effects(h)["install"] == 1


async def test_reboot_deadline_fails_with_each_nodes_last_state(
    make_harness: MakeHarness,
) -> None:
    h = make_harness("active-passive", vip=True)
    h.fake.never_return("east-b")
    result = await h.drive()
    assert isinstance(result, Fail)
    assert h.job.step_record(Step.WATCH_REBOOT).status is StepStatus.FAILED
    err = result.error
    assert err.startswith("Nodes did not all come back on 9.1R18 within 30 min of the install.")
    assert f"east-a: up on {TARGET_BUILD}" in err and "Leader" in err
    assert "east-b: not answering since" in err and "last on 9.1R17 (build 27583)" in err
    assert "VIP: on east-a" in err
    accepted = h.job.outputs.install_accepted_at
    assert h.clock.now() - accepted >= 1800
    # Logins stay disabled: the job fails loudly, keeps them flagged, offers the enable gate
    # and reminds.
    assert h.job.state is State.FAILED and h.job.error == err
    assert h.job.logins_disabled and h.fake.login_permission is False
    gate = h.job.open_gate()
    assert gate is not None and gate.step is Step.GATE_ENABLE and gate.kind is GateKind.APPROVAL
    assert h.job.step is Step.GATE_ENABLE and not h.job.settled
    [alert] = h.events(EventKind.LOGINS_DISABLED_ALERT)
    assert "user logins are still disabled on c1" in alert.data["text"]
    # The reboot deadline and the escalation delay are both 30 min by default: logins have
    # been off that long and a human is now awaited, so on-call is called at once.
    assert h.wake() == ESCALATE and h.events(EventKind.ESCALATED)
    assert h.wake() == REMINDER and h.events(EventKind.REMINDER)
    # Approving the enable gate re-enables logins; the job stays failed and lets go.
    h.decide_open(Decision.APPROVED)
    assert isinstance(await h.drive(), Advance)
    assert h.job.state is State.FAILED and h.job.settled and h.fake.login_permission is True
    assert side_effects(h) == {"disable": 1, "enable": 1, "install": 1, "export": 2}
    assert h.store.locks == {}


async def test_operator_assisted_when_writes_are_unsupported(make_harness: MakeHarness) -> None:
    h = make_harness("active-passive", vip=True)
    h.fake.unsupported |= {"set_login_permission", "install"}
    asks: list[tuple[Step, AskOperator]] = []
    fw = h.inventory.firmware_for("9.1R18")
    assert fw is not None

    def operator(hh: Harness, ask: AskOperator) -> None:
        step = hh.job.step
        asks.append((step, ask))
        if step == Step.DISABLE_LOGINS:
            hh.fake.console_set_login_permission(False)
        elif step == Step.INSTALL and len([s for s, _ in asks if s == Step.INSTALL]) == 2:
            hh.fake.console_install("east-a", fw.file)  # done only when asked again
            hh.clock.advance(70)
        elif step == Step.ENABLE_LOGINS:
            hh.fake.console_set_login_permission(True)

    result = await h.drive(operator=operator)
    assert isinstance(result, Advance), result
    assert [s for s, _ in asks] == [Step.DISABLE_LOGINS, Step.INSTALL, Step.INSTALL,
                                    Step.ENABLE_LOGINS]  # fmt: skip
    saw = asks[2][1].saw
    assert saw and saw.startswith("no sign of the install: east-a still up on 9.1R17")
    # One refused attempt per write, never a second one.
    assert side_effects(h) == {"disable": 1, "enable": 1, "install": 1, "export": 2}
    assert set(h.job.manual) == {"disable_logins", "install", "enable_logins"}


async def test_forced_manual_steps_make_no_api_writes(make_harness: MakeHarness) -> None:
    h = make_harness("active-active", manual=["logins", "install"])
    fw = h.inventory.firmware_for("9.1R18")
    assert fw is not None

    def operator(hh: Harness, ask: AskOperator) -> None:
        if hh.job.step == Step.DISABLE_LOGINS:
            hh.fake.console_set_login_permission(False)
        elif hh.job.step == Step.INSTALL:
            hh.fake.console_install("aa-1", fw.file)
        else:
            hh.fake.console_set_login_permission(True)

    result = await h.drive(operator=operator)
    assert isinstance(result, Advance), result
    assert side_effects(h) == {"disable": 0, "enable": 0, "install": 0, "export": 2}
    assert {h.fake.build_of(n) for n in h.cluster.node_names} == {TARGET_BUILD}
    assert len(h.job.steps) == len(UPGRADE.steps)
