"""Unit edges of the tolerant readings (status words, uptime, host names)."""

from __future__ import annotations

import pytest

from jobs.inventory import Cluster, Node
from jobs.pps_parse import AnswerError, parse_overview, status_word, uptime_seconds
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
