"""Unit edges of the tolerant readings: status words, uptime, host names, catalogue builds."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.appliance.parse import AnswerError, parse_overview, status_word, uptime_seconds
from jobs.appliance.versions import compare_target
from jobs.config.inventory import Cluster, Firmware, Inventory, Node
from jobs.steps.common import node_for_host


@pytest.mark.parametrize(
    ("sent", "word"),
    [
        ("Leader", "Leader"),
        ("LEADER", "Leader"),
        ("enabled", "Enabled"),
        ("Enabled,Transitioning", "Enabled, Transitioning"),
        ("  enabled ,  unreachable ", "Enabled, Unreachable"),
        ("Passive  Standby", "Passive Standby"),  # unknown words pass through, spaces tidied
        (None, ""),
    ],
)
def test_status_word(sent: object, word: str) -> None:
    assert status_word(sent) == word


def test_overview_in_cluster_ignores_spelling() -> None:
    ov = parse_overview(
        {"cluster-member-status": [{"name": "a", "enabled": True, "statuscode": "LEADER"}]}
    )
    assert ov.members[0].in_cluster


@pytest.mark.parametrize(
    ("sent", "seconds"),
    [({"days": 1, "seconds": 5}, 86405.0), (192, 192.0), ("7.5", 7.5), ({}, 0.0)],
)
def test_uptime(sent: object, seconds: float) -> None:
    assert uptime_seconds(sent) == seconds


@pytest.mark.parametrize("sent", [True, "3 days", "nan", -1, [1]])
def test_uptime_refused(sent: object) -> None:
    with pytest.raises(AnswerError):
        uptime_seconds(sent)


def _cluster(*names: str) -> Cluster:
    nodes = tuple(Node(n, f"https://{n}") for n in names)
    return Cluster("c", "active-passive", nodes, "U", "P")


@pytest.mark.parametrize(
    ("host", "node"),
    [
        ("east-a", "east-a"),
        ("EAST-B", "east-b"),
        ("east-b.corp.example.net", "east-b"),
        ("East-A.Corp", "east-a"),
        ("east-c", None),
        ("east", None),
        ("", None),
    ],
)
def test_node_for_host(host: str, node: str | None) -> None:
    assert node_for_host(_cluster("east-a", "east-b"), host) == node


def test_node_for_host_dotted_names_and_ambiguity() -> None:
    assert node_for_host(_cluster("n1.lab", "n2.lab"), "N1.LAB.corp") == "n1.lab"
    assert node_for_host(_cluster("a", "a.x"), "a.x.corp") == "a.x"
    assert node_for_host(_cluster("a", "A"), "a.corp") is None  # two nodes would fit


def test_catalogue_builds_of_one_release() -> None:
    fw = tuple(
        Firmware(v, Path(f"/fw/{i}"), "0" * 64)
        for i, v in enumerate(["9.1R18 (build 29865)", "9.1R18 (build 30001)", "9.1R17"])
    )
    inv = Inventory(clusters={}, firmware=fw)
    newest = inv.newest
    assert newest is not None and newest.version == "9.1R18 (build 30001)"
    by_release = inv.firmware_for("9.1R18")
    assert by_release is not None and by_release.version == "9.1R18 (build 30001)"
    exact = inv.firmware_for("9.1R18 (build 29865)")
    assert exact is not None and exact.version == "9.1R18 (build 29865)"
    assert compare_target("9.1R18 (build 29865)", "9.1R18 (build 29000)") == 1
    assert compare_target("9.1R18 (build 29000)", "9.1R18 (build 29865)") == -1
    assert compare_target("9.1R18", "9.1R18 (build 29865)") == 0
    assert compare_target("9.1R18 (build 29865)", "9.1R18 (build 29865)") == 0
    assert compare_target("9.1R19", "9.1R18 (build 29865)") == 1
