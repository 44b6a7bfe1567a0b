"""`ppsbot check` reads host and member names as the engine does (case, domain suffix)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.check import Report, _check_node
from jobs.appliance.protocol import VIP, ActiveUsers, MemberStatus, Overview, SystemInfo
from jobs.config.inventory import Cluster
from tests.fakes import cluster_entry, make_inventory


class _Answers:
    """Only the three reads `check` makes, answering like an appliance with odd names."""

    def __init__(self, vip_host: str) -> None:
        self.vip_host = vip_host

    async def system_info(self, node: str) -> SystemInfo:
        return SystemInfo(host_name=self.vip_host if node == VIP else node, build="9.1R17")

    async def active_users(self, node: str) -> ActiveUsers:
        return ActiveUsers(sessions=3, login_permission=True)

    async def overview(self, node: str) -> Overview:
        return Overview(
            members=(
                MemberStatus("EAST-A", True, "Leader"),
                MemberStatus("EAST-B", True, "Enabled"),
            ),
            uptime_seconds=100.0,
        )


def _cluster(tmp_path: Path) -> Cluster:
    nodes = {"east-a": "https://a.invalid", "east-b": "https://b.invalid"}
    east = cluster_entry("active-passive", nodes, vip="https://vip.invalid")
    return make_inventory(tmp_path, {"east": east}, versions=["9.1R18"]).clusters["east"]


async def test_vip_reporting_an_fqdn_and_upper_case_members_are_not_problems(
    tmp_path: Path,
) -> None:
    cluster, report = _cluster(tmp_path), Report()
    client: Any = _Answers("EAST-A.corp.example.net")
    vip = await _check_node(client, cluster, VIP, report)
    node = await _check_node(client, cluster, "east-b", report)
    assert report.problems == []
    assert vip.status == "VIP" and node.status == "Enabled"


async def test_vip_answering_as_a_stranger_is_a_problem(tmp_path: Path) -> None:
    cluster, report = _cluster(tmp_path), Report()
    client: Any = _Answers("west-z")
    await _check_node(client, cluster, VIP, report)
    assert report.problems == ["east/VIP: answers as 'west-z', not one of ['east-a', 'east-b']"]
