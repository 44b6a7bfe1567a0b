"""Preflight: every precondition checked, every failure listed, the plan and acting node."""

from __future__ import annotations

from collections.abc import Callable

from jobs.appliance.protocol import VIP
from jobs.rules.model import Step
from jobs.steps.base import Advance, Fail
from tests.fakes.harness import RUNNING, TARGET, Harness

MakeHarness = Callable[..., Harness]


def failed_checks(result: Fail) -> dict[str, str]:
    return {r["check"]: r["detail"] for r in result.outputs.preflight if not r["ok"]}


async def test_all_good_advances_with_plan_acting_node_and_builds(
    make_harness: MakeHarness,
) -> None:
    h = make_harness("active-passive", vip=True, window="Fri 07:00-09:00 UTC")
    result = await h.run(Step.PREFLIGHT)
    assert isinstance(result, Advance), result
    out = result.outputs
    assert all(r["ok"] for r in out.preflight)
    assert {r["check"] for r in out.preflight} >= {
        "window", "auth east-a", "auth east-b", "member east-a", "member east-b",
        "target package", "rollback package", "version", "acting node",
    }  # fmt: skip
    assert out.acting_node == "east-a"
    assert out.builds_before == {"east-a": RUNNING, "east-b": RUNNING}
    plan = out.plan
    assert plan["acting_node"] == "east-a"
    assert plan["downtime"] == "20-30 min"
    assert plan["sessions"] == 412
    assert plan["backup_dir"].endswith("backups/c1/J-0001")
    assert plan["package"]["file"] == "pps-9.1R18-package.pkg"
    assert len(plan["steps"]) == 11 and len(plan["gates"]) == 2
    # Reads only.
    assert h.fake.calls == []


async def test_active_passive_acting_node_is_the_vip_host(make_harness: MakeHarness) -> None:
    h = make_harness("active-passive", vip=True, fake_kw={"active": "east-b"})
    result = await h.run(Step.PREFLIGHT)
    assert isinstance(result, Advance)
    assert result.outputs.acting_node == "east-b"
    assert h.fake.count("system_info", VIP) >= 1


async def test_active_passive_without_vip_acts_on_the_first_node(
    make_harness: MakeHarness,
) -> None:
    h = make_harness("active-passive", vip=False, fake_kw={"active": "east-b"})
    result = await h.run(Step.PREFLIGHT)
    assert isinstance(result, Advance)
    assert result.outputs.acting_node == "east-a"


async def test_wrong_sha256_fails_naming_it(make_harness: MakeHarness) -> None:
    h = make_harness("standalone", catalogue_sha={"9.1R18": "ab" * 32})
    result = await h.run(Step.PREFLIGHT)
    assert isinstance(result, Fail)
    assert "sha256 of pps-9.1R18-package.pkg" in failed_checks(result)["target package"]
    assert "sha256" in result.error


async def test_missing_rollback_package_fails(make_harness: MakeHarness) -> None:
    h = make_harness("standalone", versions=("9.1R18", "9.1R16"))
    result = await h.run(Step.PREFLIGHT)
    assert isinstance(result, Fail)
    assert "no package for the running 9.1R17" in failed_checks(result)["rollback package"]


async def test_same_version_fails(make_harness: MakeHarness) -> None:
    h = make_harness("standalone", job_kw={"target": "9.1R17"})
    result = await h.run(Step.PREFLIGHT)
    assert isinstance(result, Fail)
    assert "already running" in failed_checks(result)["version"]


async def test_downgrade_needs_the_flag(make_harness: MakeHarness) -> None:
    h = make_harness("standalone", job_kw={"target": "9.1R16"})
    result = await h.run(Step.PREFLIGHT)
    assert isinstance(result, Fail)
    assert "--allow-downgrade" in failed_checks(result)["version"]
    h2 = make_harness("standalone", job_kw={"target": "9.1R16", "allow_downgrade": True})
    result2 = await h2.run(Step.PREFLIGHT)
    assert isinstance(result2, Advance), result2
    assert any("downgrade" in r["detail"] for r in result2.outputs.preflight)


async def test_outside_the_window_fails(make_harness: MakeHarness) -> None:
    h = make_harness("standalone", window="Sat 01:00-05:00 Europe/Berlin")
    result = await h.run(Step.PREFLIGHT)
    assert isinstance(result, Fail)
    assert "outside the maintenance window Sat 01:00-05:00" in failed_checks(result)["window"]


async def test_every_failure_is_listed_at_once(make_harness: MakeHarness) -> None:
    h = make_harness(
        "active-active",
        window="Sat 01:00-05:00 UTC",
        catalogue_sha={"9.1R18": "cd" * 32},
    )
    h.fake.set_down("aa-2")
    h.fake.set_enabled("aa-3", False)
    result = await h.run(Step.PREFLIGHT)
    assert isinstance(result, Fail)
    failed = failed_checks(result)
    assert set(failed) == {"window", "auth aa-2", "member aa-2", "member aa-3", "target package"}
    assert "aa-2 does not answer" in failed["auth aa-2"]
    assert "Disabled" in failed["member aa-3"]
    for detail in failed.values():
        assert detail in result.error
    assert result.outputs.acting_node is None  # nothing decided on a failed preflight


async def test_unknown_target_and_missing_file(make_harness: MakeHarness) -> None:
    h = make_harness("standalone", job_kw={"target": "9.2R1"})
    result = await h.run(Step.PREFLIGHT)
    assert isinstance(result, Fail)
    assert "9.2R1 is not in the firmware catalogue" in result.error
    h2 = make_harness("standalone")
    fw = h2.inventory.firmware_for(TARGET)
    assert fw is not None
    fw.file.unlink()
    result2 = await h2.run(Step.PREFLIGHT)
    assert isinstance(result2, Fail)
    assert "not found" in failed_checks(result2)["target package"]


async def test_plan_marks_operator_assisted_steps(make_harness: MakeHarness) -> None:
    h = make_harness("active-active", manual=["install"])
    result = await h.run(Step.PREFLIGHT)
    assert isinstance(result, Advance)
    notes = {s["step"]: s["note"] for s in result.outputs.plan["steps"]}
    assert notes["install"] == "pps-9.1R18-package.pkg on aa-1; operator-assisted"
    assert "operator-assisted" not in notes["disable_logins"]
    assert result.outputs.plan["manual"] == ["install"]
