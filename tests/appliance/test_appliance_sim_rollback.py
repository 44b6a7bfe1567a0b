"""Simulator rollback observed over HTTP through the real client: every cluster mode (the
other nodes follow as in an upgrade), its refusals and faults, the console rollback."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from jobs.appliance.protocol import VIP, Rejected, Unsupported
from tests.appliance.appliance_support import FAST, client_of, wait_for

RUNNING, BACK = "9.1R17 (build 27583)", "9.1R16 (build 26213)"


async def test_active_passive_rollback_vip_moves_and_both_nodes_swap(
    start_sim: Any
) -> None:
    sim = await start_sim(
        {"east": {"mode": "active-passive", "nodes": ["east-a", "east-b"], "knobs": FAST}}
    )
    c = sim.cluster("east")
    async with client_of(sim, "east") as client:
        with pytest.raises(Rejected, match="passive"):  # like an install: the active node only
            await client.rollback("east-b")
        await client.rollback("east-a")
        assert c.upgrading and c.upgrade_target == BACK
        await wait_for(lambda: not c.upgrading)
        info = await client.system_info(VIP)
    assert [(n.build, n.rollback_build) for n in c.nodes] == [(BACK, RUNNING)] * 2
    assert info.host_name == "east-a"  # the VIP came back
    moves = [t for _, t in c.events if t.startswith("vip:")]
    assert moves == ["vip: east-a -> east-b", "vip: east-b -> east-a"]
    assert [(e.node, e.call, e.detail, e.status) for e in c.log] == [
        ("east-b", "rollback", BACK, 422),
        ("east-a", "rollback", BACK, 202),
    ]


async def test_active_active_followers_reboot_one_after_the_other(
    start_sim: Any
) -> None:
    sim = await start_sim(
        {"aa": {"mode": "active-active", "nodes": ["x", "y", "z"], "knobs": FAST}}
    )
    c = sim.cluster("aa")
    async with client_of(sim, "aa") as client:
        await client.rollback("y")
        await wait_for(lambda: not c.upgrading)
    assert [n.build for n in c.nodes] == [BACK] * 3
    reboots = [t for _, t in c.events if t.endswith("rebooting")]
    assert reboots == ["y: rebooting", "x: rebooting", "z: rebooting"]
    assert any(t == "rollback finished" for _, t in c.events)


async def test_a_follower_without_a_partition_stops_the_sequence(
    start_sim: Any
) -> None:
    nodes = ["x", {"name": "y", "rollback_build": None}, "z"]
    sim = await start_sim({"aa": {"mode": "active-active", "nodes": nodes, "knobs": FAST}})
    c = sim.cluster("aa")
    async with client_of(sim, "aa") as client:
        with pytest.raises(Rejected, match="no rollback partition"):
            await client.rollback("y")
        await client.rollback("x")
        await wait_for(lambda: not c.upgrading)
    assert [n.build for n in c.nodes] == [BACK, RUNNING, RUNNING]
    assert any("y: no rollback partition; rollback stops" in t for _, t in c.events)


@pytest.mark.parametrize(
    ("status", "error"),
    [(422, Rejected), (500, Rejected), (404, Unsupported), (405, Unsupported),
     (501, Unsupported)],
)
async def test_rollback_faults_map_to_refused_or_unsupported(
    start_sim: Any, status: int, error: type[Exception]
) -> None:
    faults = {"rollback_status": status}
    sim = await start_sim(
        {"solo": {"mode": "standalone", "nodes": ["solo"], "faults": faults,
                  "knobs": FAST}}
    )
    c = sim.cluster("solo")
    async with client_of(sim, "solo", attempts=1) as client:
        with pytest.raises(error, match=str(status)):
            await client.rollback("solo")
    assert not c.upgrading and c.nodes[0].build == RUNNING
    assert [(e.call, e.status) for e in c.log] == [("rollback", status)]  # sent once


async def test_console_rollback_follows_the_api_rules(start_sim: Any) -> None:
    sim = await start_sim(
        {"east": {"mode": "active-passive", "nodes": ["east-a", "east-b"], "knobs": FAST}}
    )
    base = sim.control_url + "/_sim/clusters/east/nodes"
    c = sim.cluster("east")
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{base}/east-b/console-rollback")
        assert r.status_code == 400 and "passive" in r.json()["error"]
        r = await http.post(f"{base}/east-a/console-rollback")
        assert r.status_code == 200 and r.json()["upgrading"] is True
        r = await http.post(f"{base}/east-a/console-rollback")
        assert r.status_code == 400 and "in progress" in r.json()["error"]
    await wait_for(lambda: not c.upgrading)
    assert [n.build for n in c.nodes] == [BACK, BACK]
    assert c.log == []  # the write log records API calls only
