"""The fleet's pure parts: marks (builds differ, older than the newest), the stored form of
a reading, and what counts as a change a viewer would notice."""

from __future__ import annotations

import pytest

from jobs.fleet.model import (
    UNREACHABLE,
    ClusterReading,
    NodeReading,
    builds_disagree,
    nodes_behind,
    unreachable_nodes,
)
from jobs.fleet.poller import cluster_seconds, tick_seconds

OLD, NEW = "9.1R17 (build 27583)", "9.1R18 (build 29865)"


def reading(*nodes: NodeReading, sessions: int = 5, at: float = 100.0) -> ClusterReading:
    return ClusterReading("c", at, nodes, login_permission=True, sessions=sessions)


@pytest.mark.parametrize(("builds", "split"), [
    ((OLD, OLD), False),
    ((OLD, NEW), True),
    (("9.1R18 (build 29865)", "9.1R18 (build 29866)"), True),  # a re-spin of one release
    (("9.1R18", "9.1R18 (build 29865)"), True),  # one says its build, one does not
    ((NEW,), False),
    (("garbage", "garbage "), False),  # unreadable but equal
    (("garbage", NEW), True),
])
def test_builds_disagree(builds: tuple[str, ...], split: bool) -> None:
    nodes = [NodeReading(f"n{i}", b, None, "Enabled") for i, b in enumerate(builds)]
    assert builds_disagree(reading(*nodes)) is split


def test_nodes_that_did_not_answer_are_not_judged() -> None:
    r = reading(NodeReading("a", OLD, None, "Leader"), NodeReading("b", error=UNREACHABLE),
                NodeReading("c", error="HTTP 500: boom"))
    assert not builds_disagree(r)
    assert nodes_behind(r, "9.1R18") == ["a"]
    assert unreachable_nodes(r) == ["b", "c"]


@pytest.mark.parametrize(("build", "newest", "behind"), [
    (OLD, "9.1R18", True),
    (NEW, "9.1R18", False),
    ("9.1R18.1 (build 30000)", "9.1R18", False),  # newer than the catalogue: not behind
    ("22.7R2.3 (build 1)", "9.1R18", False),
    ("9.1R17.1", "9.1R18", True),
    ("not a version", "9.1R18", False),
    (OLD, None, False),  # no catalogue: nothing to compare with
])
def test_nodes_behind_the_newest(build: str, newest: str | None, behind: bool) -> None:
    r = reading(NodeReading("a", build, None, "Leader"))
    assert (nodes_behind(r, newest) == ["a"]) is behind


def test_reading_round_trips_through_json_and_refuses_garbage() -> None:
    r = ClusterReading("east", 1.5, (NodeReading("a", OLD, "9.1R16", "Leader"),
                                     NodeReading("b", error=UNREACHABLE)),
                       login_permission=False, sessions=0, error=None, seconds=0.25)
    assert ClusterReading.from_json(r.to_json()) == r
    for bad in ("{", "[]", '{"cluster": "x"}', '{"cluster": "x", "read_at": "soon"}',
                '{"cluster": "x", "read_at": 1, "nodes": [{"build": "y"}]}'):
        with pytest.raises(ValueError):
            ClusterReading.from_json(bad)


def test_signature_ignores_sessions_and_time_but_not_builds_or_logins() -> None:
    base = reading(NodeReading("a", OLD, None, "Leader"))
    assert base.signature() == reading(NodeReading("a", OLD, None, "Leader"), sessions=900,
                                       at=999.0).signature()
    assert base.signature() != reading(NodeReading("a", NEW, None, "Leader")).signature()
    assert base.signature() != reading(NodeReading("a", OLD, None, "Enabled")).signature()
    off = ClusterReading("c", 100.0, base.nodes, login_permission=False, sessions=5)
    assert base.signature() != off.signature()


@pytest.mark.parametrize(("every", "bound", "tick"), [
    (300.0, 30.0, 30.0), (60.0, 30.0, 6.0), (4.0, 2.0, 0.4), (0.1, 2.0, 0.05),
])
def test_time_bound_and_tick_follow_the_interval(every: float, bound: float,
                                                 tick: float) -> None:
    assert (cluster_seconds(every), tick_seconds(every)) == (bound, tick)
