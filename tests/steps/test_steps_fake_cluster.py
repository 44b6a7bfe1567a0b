"""FakeCluster follows PPS-API.md's upgrade behaviour on an injected clock, and persists."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from jobs.appliance.protocol import (
    STATUS_LEADER,
    STATUS_TRANSITIONING,
    STATUS_UNREACHABLE,
    VIP,
    Rejected,
    Unreachable,
    Unsupported,
)
from jobs.config.clock import SystemClock
from tests.fakes.appliance import FakeCluster
from tests.fakes.clock import FakeClock

PKG = Path("/nonexistent/pps-9.1R18-package.pkg")
NEW = "9.1R18 (build 29865)"
OLD = "9.1R17 (build 27583)"


def fake(mode: str, nodes: list[str], clock: FakeClock, **kw: object) -> FakeCluster:
    return FakeCluster(
        clock,
        mode,
        nodes,
        build=OLD,
        packages={PKG.name: NEW},
        install_seconds=10,
        reboot_seconds=20,
        rejoin_seconds=5,
        **kw,  # type: ignore[arg-type]
    )


async def test_standalone_installs_reboots_and_returns_on_the_new_build() -> None:
    clock = FakeClock()
    fc = fake("standalone", ["solo"], clock, sessions=7)
    before = (await fc.overview("solo")).uptime_seconds
    await fc.install("solo", PKG)
    assert fc.phase("solo") == "installing"
    assert (await fc.system_info("solo")).build == OLD
    clock.advance(10)
    assert fc.phase("solo") == "rebooting"
    with pytest.raises(Unreachable):
        await fc.system_info("solo")
    clock.advance(20)
    info = await fc.system_info("solo")
    assert (info.build, info.rollback_build) == (NEW, OLD)
    ov = await fc.overview("solo")
    assert ov.members == ()
    assert ov.uptime_seconds == 0 < before
    assert (await fc.active_users("solo")).sessions == 0  # the reboot cut them
    clock.advance(5)
    assert fc.phase("solo") == "up"
    assert fc.count("install") == 1


async def test_active_passive_vip_flips_to_the_passive_and_back_then_passive_upgrades() -> None:
    clock = FakeClock()
    fc = fake("active-passive", ["a", "b"], clock)
    assert (await fc.system_info(VIP)).host_name == "a"
    with pytest.raises(Rejected) as refused:
        await fc.install("b", PKG)
    assert refused.value.status == 422 and "passive" in refused.value.message
    await fc.install("a", PKG)
    with pytest.raises(Rejected) as again:
        await fc.install("a", PKG)
    assert again.value.status == 422 and "in progress" in again.value.message
    seen = []
    for _ in range(160):  # 0.5 s steps through both upgrades (2 x 35 s)
        seen.append((fc.vip_holder(), fc.phase("a"), fc.phase("b")))
        clock.advance(0.5)
    holders = [h for h, _, _ in seen]
    # a holds the VIP, b takes it while a is away, a gets it back and keeps it.
    compressed = [h for i, h in enumerate(holders) if i == 0 or holders[i - 1] != h]
    assert compressed == ["a", "b", "a"]
    assert ("a", "up", "rebooting") in seen  # b reboots after a is back
    ov = await fc.overview("b")
    assert {m.name: m.status for m in ov.members} == {"a": STATUS_LEADER, "b": "Enabled"}
    assert (await fc.system_info("b")).build == NEW


async def test_active_active_nodes_follow_one_after_the_other() -> None:
    clock = FakeClock()
    fc = fake("active-active", ["n1", "n2", "n3"], clock)
    await fc.install("n2", PKG)
    clock.advance(12)  # n2 rebooting, others not started
    assert [fc.phase(n) for n in ("n1", "n2", "n3")] == ["up", "rebooting", "up"]
    ov = await fc.overview("n1")
    assert {m.name: m.status for m in ov.members}["n2"] == STATUS_UNREACHABLE
    clock.advance(23)  # n2 joined at 35; n1 starts installing
    assert [fc.phase(n) for n in ("n1", "n2", "n3")] == ["installing", "up", "up"]
    ov = await fc.overview("n3")
    assert {m.name: m.status for m in ov.members}["n1"] == STATUS_TRANSITIONING
    clock.advance(70)
    assert {fc.build_of(n) for n in ("n1", "n2", "n3")} == {NEW}
    assert fc.upgrade_done_at() is None  # folded: nothing scheduled any more


async def test_faults_never_returns_500_unsupported_down_and_empty_export() -> None:
    clock = FakeClock()
    fc = fake("active-active", ["n1", "n2"], clock)
    fc.never_return("n1")
    await fc.install("n1", PKG)
    clock.advance(10_000)
    assert fc.phase("n1") == "rebooting" and fc.phase("n2") == "up"
    assert fc.build_of("n2") == OLD  # the cluster never pushed further
    fc.fail_next("system_info", 500, count=2, node="n2")
    for _ in range(2):
        with pytest.raises(Rejected):
            await fc.system_info("n2")
    assert (await fc.system_info("n2")).host_name == "n2"
    fc.unsupported.add("set_login_permission")
    with pytest.raises(Unsupported):
        await fc.set_login_permission("n2", False)
    assert fc.login_permission is True
    fc.set_down("n2")
    with pytest.raises(Unreachable):
        await fc.active_users("n2")
    with pytest.raises(Unreachable):
        await fc.system_info(VIP)
    fc.set_down("n2", False)
    fc.empty_export = True
    with pytest.raises(Rejected):
        await fc.export_config("n2", "system")
    assert fc.count("set_login_permission", "n2") == 1
    assert [c["outcome"] for c in fc.calls] == ["ok", "Unsupported", "Rejected"]


async def test_snapshot_restores_mid_upgrade_on_another_clock() -> None:
    clock = FakeClock()
    fc = fake("active-passive", ["a", "b"], clock, sessions=10)
    await fc.set_login_permission(VIP, False)
    await fc.install("a", PKG)
    clock.advance(15)  # a rebooting, VIP on b
    snap = json.loads(json.dumps(fc.snapshot()))  # strictly JSON-able
    other = FakeClock(clock.now())
    back = FakeCluster.restore(snap, other)
    assert back.snapshot() == fc.snapshot()
    assert back.vip_holder() == "b" and back.login_permission is False
    assert back.count("install", "a") == 1
    other.advance(100)
    clock.advance(100)
    assert back.snapshot() == fc.snapshot()
    assert back.build_of("b") == NEW


async def test_snapshot_times_are_absolute_so_a_real_clock_continues_them() -> None:
    start = time.time()
    fc = fake("standalone", ["solo"], FakeClock(start))
    await fc.install("solo", PKG)
    real = FakeCluster.restore(fc.snapshot(), SystemClock())
    assert real.phase("solo") == "installing"  # 10 s install, restored within it
    late = FakeCluster.restore(fc.snapshot(), FakeClock(start + 40))
    assert late.phase("solo") == "up" and late.build_of("solo") == NEW
