"""Simulator upgrade behaviour observed over HTTP (the way the bot sees it), and its faults."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from jobs.appliance.client import PpsClient
from jobs.appliance.protocol import VIP, ApplianceError, Unreachable
from sim.pps.packages import write_package
from tests.appliance.appliance_support import FAST, client_of, wait_for

TARGET = "9.1R18 (build 29865)"


def _compress(values: list[str]) -> list[str]:
    out: list[str] = []
    for v in values:
        if not out or out[-1] != v:
            out.append(v)
    return out


class Observer:
    """Polls every target without retries; records what each one answered, in order."""

    def __init__(self, client: PpsClient, targets: list[str]) -> None:
        self.client = client
        self.targets = targets
        self.seen: dict[str, list[str]] = {t: [] for t in targets}
        self.statuses: set[tuple[str, str]] = set()
        self.ticks: list[dict[str, str]] = []
        self.first_tick = asyncio.Event()

    async def _one(self, target: str) -> str:
        try:
            info = await self.client.system_info(target)
            ov = await self.client.overview(target)
        except Unreachable:
            return "down"
        except ApplianceError:
            return "error"
        self.statuses.update((m.name, m.status) for m in ov.members)
        return f"{info.host_name}@{info.build.split(' ')[0]}"

    async def start(self, done: Any, within: float = 8.0) -> asyncio.Task[None]:
        """Observe in the background from now on; returns after the first full tick."""
        task = asyncio.create_task(self.run_until(done, within))
        await self.first_tick.wait()
        return task

    async def run_until(self, done: Any, within: float = 8.0) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            states = await asyncio.gather(*(self._one(t) for t in self.targets))
            tick = dict(zip(self.targets, states, strict=True))
            self.ticks.append(tick)
            for t, s in tick.items():
                self.seen[t].append(s)
            self.first_tick.set()
            if done(tick):
                return
            await asyncio.sleep(0.02)
        pytest.fail(f"not done within {within} s; saw {self.timeline()}")

    def timeline(self) -> dict[str, list[str]]:
        return {t: _compress(v) for t, v in self.seen.items()}

    def down_interval(self, target: str) -> tuple[int, int]:
        idx = [i for i, tick in enumerate(self.ticks) if tick[target] == "down"]
        assert idx, f"{target} was never seen down"
        return idx[0], idx[-1]


@pytest.fixture
def package(tmp_path: Path) -> Path:
    p = tmp_path / "pps-9.1R18.pkg"
    write_package(p, "9.1R18", 29865)
    return p


async def test_active_passive_upgrade_flips_the_vip_and_back(
    start_sim: Any, package: Path
) -> None:
    sim = await start_sim(
        {"east": {"mode": "active-passive", "nodes": ["east-a", "east-b"], "knobs": FAST}}
    )
    async with client_of(sim, "east", attempts=1, read=2.0) as client:
        obs = Observer(client, ["east-a", "east-b", VIP])
        await client.install(VIP, package)

        def done(tick: dict[str, str]) -> bool:
            return (
                all(s.endswith("9.1R18") for s in tick.values())
                and not sim.cluster("east").upgrading
            )

        await obs.run_until(done)
    tl = obs.timeline()
    assert tl["east-a"] == ["east-a@9.1R17", "down", "east-a@9.1R18"]
    assert tl["east-b"] == ["east-b@9.1R17", "down", "east-b@9.1R18"]
    # The VIP moved to the passive while the active rebooted, then came back.
    vip_hosts = _compress([s.split("@")[0] for s in obs.seen[VIP] if s != "down"])
    assert vip_hosts == ["east-a", "east-b", "east-a"]
    assert "down" not in obs.seen[VIP]
    a, b = obs.down_interval("east-a"), obs.down_interval("east-b")
    assert a[1] < b[0], "the passive installs only after the active is back"
    assert ("east-a", "Enabled, Unreachable") in obs.statuses
    assert ("east-b", "Enabled, Unreachable") in obs.statuses
    assert ("east-a", "Enabled, Transitioning") in obs.statuses
    assert ("east-b", "Leader") in obs.statuses  # leader while holding the VIP
    c = sim.cluster("east")
    assert [(n.build, n.rollback_build) for n in c.nodes] == [(TARGET, "9.1R17 (build 27583)")] * 2
    assert c.write_counts() == {"east-a": {"install": 1}, "east-b": {}}
    assert c.log[0].via_vip is True


async def test_active_active_nodes_follow_one_after_the_other(
    start_sim: Any, package: Path
) -> None:
    nodes = ["aa-1", "aa-2", "aa-3"]
    sim = await start_sim({"aa": {"mode": "active-active", "nodes": nodes, "knobs": FAST}})
    async with client_of(sim, "aa", attempts=1, read=2.0) as client:
        obs = Observer(client, nodes)
        await client.install("aa-2", package)

        def done(tick: dict[str, str]) -> bool:
            return (
                all(s.endswith("9.1R18") for s in tick.values()) and not sim.cluster("aa").upgrading
            )

        await obs.run_until(done)
    for n in nodes:
        assert obs.timeline()[n] == [f"{n}@9.1R17", "down", f"{n}@9.1R18"]
    i2, i1, i3 = (obs.down_interval(n) for n in ("aa-2", "aa-1", "aa-3"))
    assert i2[1] < i1[0] and i1[1] < i3[0], "one node at a time, the asked node first"
    assert all(sum(t[n] == "down" for n in nodes) <= 1 for t in obs.ticks)
    assert ("aa-1", "Enabled, Unreachable") in obs.statuses
    assert sim.cluster("aa").write_counts() == {"aa-1": {}, "aa-2": {"install": 1}, "aa-3": {}}


async def test_standalone_reboots_once_and_uptime_drops(
    start_sim: Any, package: Path
) -> None:
    sim = await start_sim({"solo": {"mode": "standalone", "nodes": ["solo"], "knobs": FAST}})
    async with client_of(sim, "solo", attempts=1, read=2.0) as client:
        before = (await client.overview("solo")).uptime_seconds
        obs = Observer(client, ["solo"])
        watching = await obs.start(lambda t: t["solo"].endswith("9.1R18"))
        await client.install("solo", package)
        await watching
        after = await client.overview("solo")
    assert obs.timeline()["solo"] == ["solo@9.1R17", "down", "solo@9.1R18"]
    assert after.members == () and after.uptime_seconds < 5 < before


async def test_node_that_never_returns_stops_the_upgrade(
    start_sim: Any, package: Path
) -> None:
    sim = await start_sim(
        {
            "east": {
                "mode": "active-passive",
                "nodes": ["east-a", "east-b"],
                "knobs": FAST,
                "faults": {"never_returns": ["east-a"]},
            }
        }
    )
    c = sim.cluster("east")
    async with client_of(sim, "east", attempts=1) as client:
        await client.install(VIP, package)
        await wait_for(lambda: not c.upgrading)
        with pytest.raises(Unreachable, match="refused"):
            await client.system_info("east-a")
        info = await client.system_info(VIP)  # the passive keeps the VIP
        ov = await client.overview(VIP)
    assert info.host_name == "east-b" and info.build == "9.1R17 (build 27583)"
    assert {m.name: m.status for m in ov.members} == {
        "east-a": "Enabled, Unreachable",
        "east-b": "Leader",
    }
    assert c.node("east-a").phase == "down"


async def test_sessions_of_a_rebooted_node_are_gone(start_sim: Any) -> None:
    sim = await start_sim(
        {"aa": {"mode": "active-active", "nodes": ["x", "y"], "sessions": 10, "knobs": FAST}}
    )
    c = sim.cluster("aa")
    await sim.reboot("aa", "y")
    await wait_for(lambda: c.node("y").phase == "up")
    async with client_of(sim, "aa") as client:
        users = await client.active_users("x")
    assert users.sessions == 5


async def test_rollback_swaps_partitions(start_sim: Any) -> None:
    sim = await start_sim({"solo": {"mode": "standalone", "nodes": ["solo"], "knobs": FAST}})
    c = sim.cluster("solo")
    async with client_of(sim, "solo") as client:
        await client.rollback("solo")
        await wait_for(lambda: not c.upgrading and c.node("solo").phase == "up")
        info = await client.system_info("solo")
    assert (info.build, info.rollback_build) == ("9.1R16 (build 26213)", "9.1R17 (build 27583)")


async def test_invalid_package_is_422(start_sim: Any, tmp_path: Path) -> None:
    sim = await start_sim({"solo": {"mode": "standalone", "nodes": ["solo"]}})
    junk = tmp_path / "junk.pkg"
    junk.write_bytes(b"not a package\n" * 10)
    async with client_of(sim, "solo") as client:
        with pytest.raises(ApplianceError, match="not a valid package"):
            await client.install("solo", junk)
    assert sim.cluster("solo").upgrading is False


async def test_request_in_flight_is_reset_when_the_node_goes_down(
    start_sim: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sim = await start_sim(
        {"solo": {"mode": "standalone", "nodes": ["solo"], "faults": {"slow_seconds": 2.0}}}
    )
    async with client_of(sim, "solo", attempts=1, read=5.0) as client:
        sim.cluster("solo").faults.slow_seconds = 0.0
        await client.system_info("solo")  # logged in while fast
        sim.cluster("solo").faults.slow_seconds = 2.0
        pending = asyncio.create_task(client.overview("solo"))
        await asyncio.sleep(0.2)
        t0 = time.monotonic()
        await sim.power("solo", "solo", False)
        with pytest.raises(Unreachable, match="reset or closed"):
            await pending
        assert time.monotonic() - t0 < 1.0  # cut at once, not after the slow answer
    assert not [r for r in caplog.records if "Exception in ASGI application" in r.getMessage()]


async def test_install_lost_in_transit_resets_and_starts_nothing(
    start_sim: Any, tmp_path: Path
) -> None:
    sim = await start_sim(
        {"c": {"mode": "standalone", "nodes": ["solo"], "faults": {"install_lost": 1}}}
    )
    pkg = tmp_path / "p.pkg"
    write_package(pkg, "9.1R18", 29865)
    async with client_of(sim, "c", attempts=1) as client:
        with pytest.raises(Unreachable, match="reset or closed"):
            await client.install("solo", pkg)
        await asyncio.sleep(0.2)
        assert (await client.system_info("solo")).build == "9.1R17 (build 27583)"
        await client.install("solo", pkg)  # the next one arrives
    c = sim.cluster("c")
    assert [(e.call, e.detail, e.status) for e in c.log] == [
        ("install", TARGET, 0),
        ("install", TARGET, 202),
    ]
    assert c.faults.install_lost == 0


@pytest.mark.parametrize("status", [502, 504])
async def test_proxy_5xx_while_the_install_starts(
    start_sim: Any, tmp_path: Path, status: int
) -> None:
    sim = await start_sim(
        {
            "c": {
                "mode": "standalone",
                "nodes": ["solo"],
                "knobs": FAST,
                "faults": {"install_proxy_status": status},
            }
        }
    )
    pkg = tmp_path / "p.pkg"
    write_package(pkg, "9.1R18", 29865)
    async with client_of(sim, "c", attempts=1) as client:
        with pytest.raises(ApplianceError) as err:
            await client.install("solo", pkg)
    assert f"HTTP {status}" in str(err.value)
    c = sim.cluster("c")
    await wait_for(lambda: c.node("solo").build == TARGET)  # it did install
    assert [(e.call, e.status) for e in c.log] == [("install", status)]
