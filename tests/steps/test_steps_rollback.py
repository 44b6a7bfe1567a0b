"""The rollback procedure's steps on a fake cluster (fake clock, no sockets): its preflight,
the one rollback call and its reconciliation on re-entry, the operator-assisted path, the
disable gate's evidence, and whole runs on every cluster mode."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from jobs.procedures import ROLLBACK
from jobs.rules.model import Decision, Step
from jobs.rules.outputs import RollbackOut
from jobs.steps.base import Advance, AskApproval, AskOperator, Fail
from tests.fakes.harness import RUNNING, Harness

MakeHarness = Callable[..., Harness]
BACK = "9.1R16 (build 26213)"  # the fake's rollback partition build
AS_ROLLBACK = {"procedure": "rollback", "target": ""}


def rollback_harness(make: MakeHarness, mode: str, **kw: Any) -> Harness:
    return make(mode, job_kw=AS_ROLLBACK, **kw)


def failed_checks(result: Fail) -> dict[str, str]:
    assert result.outputs is not None
    return {r["check"]: r["detail"] for r in result.outputs.preflight if not r["ok"]}


async def at_rollback(h: Harness) -> Harness:
    """Preflight and record have run (logins off); the job is at the rollback step."""
    h.apply(await h.run(Step.PREFLIGHT))
    h.job.outputs.merge((await h.run(Step.RECORD)).outputs)
    h.job.step = Step.ROLLBACK
    return h


def rollback_calls(h: Harness) -> list[str]:
    return [c["node"] for c in h.fake.calls if c["method"] == "rollback"]


# -- preflight ------------------------------------------------------------------------------


async def test_preflight_finds_the_rollback_build_and_makes_it_the_target(
    make_harness: MakeHarness,
) -> None:
    h = rollback_harness(make_harness, "active-passive", vip=True)
    result = await h.run(Step.PREFLIGHT)
    assert isinstance(result, Advance), result
    out = result.outputs
    assert out.target_build == BACK and out.acting_node == "east-a"
    checks = {r["check"]: r for r in out.preflight}
    assert checks["rollback partition"]["ok"] and BACK in checks["rollback partition"]["detail"]
    assert "target package" not in checks and "version" not in checks  # an upgrade's only
    assert [s["step"] for s in out.plan["steps"]] == [s.value for s in ROLLBACK.steps]
    assert out.plan["target"] == BACK and out.plan["package"] is None
    h.apply(result)
    assert h.job.target == BACK  # what the watch and verify compare against
    assert h.fake.calls == []  # reads only


@pytest.mark.parametrize(
    ("partitions", "words"),
    [
        ({"aa-2": None}, "no rollback partition on aa-2"),
        ({"aa-3": "9.1R15 (build 25000)"}, "rollback partitions differ"),
        ({"aa-1": RUNNING, "aa-2": RUNNING, "aa-3": RUNNING}, "already run(s) 9.1R17"),
    ],
)
async def test_preflight_refuses_partitions_it_cannot_roll_back_to(
    make_harness: MakeHarness, partitions: dict[str, str | None], words: str
) -> None:
    h = rollback_harness(make_harness, "active-active")
    for node, build in partitions.items():
        h.fake.nodes[node].rollback_build = build
    result = await h.run(Step.PREFLIGHT)
    assert isinstance(result, Fail), result
    assert words in failed_checks(result)["rollback partition"]
    assert words in result.error


async def test_preflight_lists_an_unreachable_node_and_a_missing_partition_at_once(
    make_harness: MakeHarness,
) -> None:
    h = rollback_harness(make_harness, "active-passive")
    h.fake.set_down("east-b")
    h.fake.nodes["east-a"].rollback_build = None
    result = await h.run(Step.PREFLIGHT)
    assert isinstance(result, Fail)
    failed = failed_checks(result)
    assert "east-b does not answer" in failed["auth east-b"]
    assert "no rollback partition on east-a" in failed["rollback partition"]


# -- the rollback call ----------------------------------------------------------------------


async def test_checkpoint_then_one_call_to_the_active_node(make_harness: MakeHarness) -> None:
    h = await at_rollback(rollback_harness(make_harness, "active-passive", vip=True))
    calls_at_checkpoint: list[int] = []
    h.on_checkpoint = lambda _o: calls_at_checkpoint.append(len(rollback_calls(h)))
    result = await h.run()
    assert isinstance(result, Advance), result
    assert calls_at_checkpoint == [0]
    assert h.checkpoints[0] == {"rollback_sent_at": h.clock.now(), "rollback_node": "east-a"}
    assert result.outputs.rollback_accepted_at == h.clock.now()
    assert rollback_calls(h) == ["east-a"]


async def test_active_moved_since_preflight_rolls_back_the_vip_host(
    make_harness: MakeHarness,
) -> None:
    h = await at_rollback(rollback_harness(make_harness, "active-passive", vip=True))
    h.fake.active = "east-b"  # a failover while the gate waited
    result = await h.run()
    assert isinstance(result, Advance) and result.outputs.rollback_node == "east-b"
    assert rollback_calls(h) == ["east-b"]


@pytest.mark.parametrize(
    ("after", "sign"),
    [(61.0, "not answering (rebooting)"), (1000.0, f"runs {BACK}")],
)
async def test_reentry_after_the_call_reads_the_node_and_never_calls_again(
    make_harness: MakeHarness, after: float, sign: str
) -> None:
    h = await at_rollback(rollback_harness(make_harness, "standalone"))
    sent = h.clock.now()
    h.job.outputs.merge(RollbackOut(rollback_sent_at=sent, rollback_node="solo"))
    h.fake.console_rollback("solo")  # the call had gone through before the worker died
    h.clock.advance(after)
    result = await h.run()
    assert isinstance(result, Advance), result
    assert sign in result.detail and "not sent again" in result.detail
    assert result.outputs.rollback_accepted_at == sent
    assert rollback_calls(h) == []


async def test_reentry_finding_the_node_untouched_asks_an_operator(
    make_harness: MakeHarness,
) -> None:
    h = await at_rollback(rollback_harness(make_harness, "active-active"))
    h.job.outputs.merge(RollbackOut(rollback_sent_at=h.clock.now() - 90, rollback_node="aa-1"))
    result = await h.run()
    assert isinstance(result, AskOperator), result
    assert "never sends it twice" in result.reason
    assert result.saw is not None and f"still up on {RUNNING}" in result.saw
    assert "Maintenance > System > Platform" in result.instructions
    assert rollback_calls(h) == []
    h.apply(result)
    h.fake.console_rollback("aa-1")  # the operator does it
    h.clock.advance(61)
    h.decide_open(Decision.CONFIRMED)
    confirmed = await h.run()
    assert isinstance(confirmed, Advance), confirmed
    assert confirmed.outputs.rollback_by == "operator"
    assert rollback_calls(h) == []


async def test_422_fails_with_the_appliance_words_and_stays_refused(
    make_harness: MakeHarness,
) -> None:
    h = await at_rollback(rollback_harness(make_harness, "standalone"))
    h.fake.fail_next("rollback", 422)
    result = await h.run()
    assert isinstance(result, Fail)
    assert "refused the rollback" in result.error and "no rollback partition" in result.error
    assert h.job.outputs.rollback_outcome == "rejected"
    again = await h.run()  # re-entered (duplicate delivery): still failed, no second call
    assert isinstance(again, Fail) and again.error == result.error
    assert rollback_calls(h) == ["solo"]


async def test_unsupported_call_goes_operator_assisted(make_harness: MakeHarness) -> None:
    h = await at_rollback(rollback_harness(make_harness, "standalone"))
    h.fake.unsupported.add("rollback")
    result = await h.run()
    assert isinstance(result, AskOperator), result
    assert "does not support" in result.reason
    assert h.job.outputs.rollback_outcome == "unsupported"
    assert isinstance(await h.run(), AskOperator)
    assert rollback_calls(h) == ["solo"]  # the one refused call, never repeated


async def test_manual_in_the_inventory_asks_before_any_call(make_harness: MakeHarness) -> None:
    h = await at_rollback(rollback_harness(make_harness, "standalone", manual=["rollback"]))
    result = await h.run()
    assert isinstance(result, AskOperator)
    assert "'rollback' as manual" in result.reason and BACK in result.instructions
    assert h.checkpoints == [] and rollback_calls(h) == []


async def test_a_partition_changed_since_preflight_is_not_rolled_back(
    make_harness: MakeHarness,
) -> None:
    h = await at_rollback(rollback_harness(make_harness, "standalone"))
    h.fake.nodes["solo"].rollback_build = "9.1R15 (build 25000)"
    result = await h.run()
    assert isinstance(result, Fail)
    assert "now holds 9.1R15" in result.error and rollback_calls(h) == []


# -- the gate and whole runs ----------------------------------------------------------------


async def test_disable_gate_names_the_build_it_goes_back_to_and_the_sessions(
    make_harness: MakeHarness,
) -> None:
    h = rollback_harness(make_harness, "active-passive", vip=True)
    h.apply(await h.run(Step.PREFLIGHT))
    result = await h.run(Step.GATE_DISABLE)
    assert isinstance(result, AskApproval)
    ev = result.evidence
    assert ev["rollback_to"] == BACK and ev["sessions"] == 412 and ev["running"] == [RUNNING]
    text = " ".join(ev["summary"])
    assert f"roll east-a back to {BACK}" in text and "412 active sessions will be cut" in text


@pytest.mark.parametrize(
    ("mode", "vip"),
    [("standalone", False), ("active-passive", True), ("active-active", False)],
)
async def test_whole_rollback_on_each_mode_calls_once(
    make_harness: MakeHarness, mode: str, vip: bool
) -> None:
    h = rollback_harness(make_harness, mode, vip=vip)
    result = await h.drive()
    assert isinstance(result, Advance), result
    assert h.job.target == BACK
    assert all(h.fake.build_of(n) == BACK for n in h.fake.nodes)
    assert len(rollback_calls(h)) == 1
    logins = [c["arg"] for c in h.fake.calls if c["method"] == "set_login_permission"]
    assert logins == ["enabled=False", "enabled=True"]
    watched = h.job.outputs.watch or {}
    assert watched["started_at"] == h.job.outputs.rollback_accepted_at  # deadline from it
