"""Reboot-watch logic (jobs.steps.reboot_observer) over random orderings of node observations."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.appliance.protocol import (
    STATUS_ENABLED,
    STATUS_TRANSITIONING,
    STATUS_UNREACHABLE,
    MemberStatus,
    Overview,
)
from jobs.steps.reboot_observer import Reading, last_report, observe, start

OLD, NEW, TARGET = "9.1R17 (build 27583)", "9.1R18 (build 29865)", "9.1R18"
# Lifecycle of one node during the upgrade, in order.
UP_OLD, INSTALLING, DOWN, REJOINING, UP_NEW = range(5)


def poll(
    phases: dict[str, int], t: float, standalone: bool
) -> tuple[dict[str, Reading], dict[str, Overview]]:
    """Readings and overviews for nodes in the given phases at time `t`."""
    words = {
        UP_OLD: STATUS_ENABLED,
        INSTALLING: STATUS_TRANSITIONING,
        DOWN: STATUS_UNREACHABLE,
        REJOINING: STATUS_TRANSITIONING,
        UP_NEW: STATUS_ENABLED,
    }
    members = tuple(MemberStatus(n, True, words[p]) for n, p in phases.items())
    readings: dict[str, Reading] = {}
    views: dict[str, Overview] = {}
    for n, p in phases.items():
        if p == DOWN:
            readings[n] = Reading(reachable=False)
            continue
        build = OLD if p < DOWN else NEW
        uptime = 1_000_000 + t if p < DOWN else 5.0 + t / 1000
        readings[n] = Reading(True, build, uptime)
        views[n] = Overview(() if standalone else members, uptime)
    return readings, views


@st.composite
def histories(draw: st.DrawFn) -> list[dict[str, int]]:
    """A random sequence of polls; each node's phase never goes backwards; ends all done."""
    names = [f"n{i}" for i in range(draw(st.integers(1, 3)))]
    length = draw(st.integers(0, 12))
    per_node = {
        n: sorted(draw(st.lists(st.integers(UP_OLD, UP_NEW), min_size=length, max_size=length)))
        for n in names
    }
    polls = [{n: per_node[n][i] for n in names} for i in range(length)]
    polls.append(dict.fromkeys(names, UP_NEW))
    return polls


@settings(max_examples=300, deadline=None)
@given(histories())
def test_done_exactly_when_every_node_is_back_on_target_and_flags_stick(
    history: list[dict[str, int]],
) -> None:
    names = list(history[0])
    standalone = len(names) == 1
    state = start(names, dict.fromkeys(names, OLD), dict.fromkeys(names, 999_999.0), 0.0)
    outages = dict.fromkeys(names, 0)
    prev = dict.fromkeys(names, UP_OLD)
    lines: list[str] = []
    for i, phases in enumerate(history):
        readings, views = poll(phases, float(i * 10), standalone)
        before: dict[str, Any] = state["nodes"]
        obs = observe(
            state, readings, views, now=float(i * 10), target=TARGET, standalone=standalone
        )
        state, lines = obs.state, lines + obs.lines
        # A standalone appliance has no cluster status: answering on the target is enough.
        last = REJOINING if standalone else UP_NEW
        assert obs.done == all(p >= last for p in phases.values())
        for n in names:
            now_n, was_n = state["nodes"][n], before[n]
            for flag in ("seen_down", "rebooted", "uptime_dropped"):
                assert now_n[flag] or not was_n[flag], f"{flag} of {n} reverted"
            assert now_n["rebooted"] == (phases[n] >= DOWN)
            assert now_n["on_target"] == (phases[n] >= REJOINING)
            if phases[n] == DOWN and prev[n] != DOWN:
                outages[n] += 1
            prev[n] = phases[n]
    for n in names:
        assert lines.count(f"{n} stopped answering (rebooting)") == outages[n]
    assert obs.done


def test_stopped_answering_reported_once_per_outage() -> None:
    state = start(["a"], {"a": OLD}, {"a": 100.0}, 0.0)
    lines: list[str] = []
    for i, phase in enumerate([UP_OLD, DOWN, DOWN, DOWN, REJOINING, UP_NEW]):
        readings, views = poll({"a": phase}, float(i), standalone=False)
        obs = observe(state, readings, views, now=float(i), target=TARGET, standalone=False)
        state = obs.state
        lines += obs.lines
    assert lines.count("a stopped answering (rebooting)") == 1
    assert f"a answers again, on {NEW}" in lines
    assert "a is back in the cluster (Enabled)" in lines
    assert lines[-1] == f"a runs {TARGET} and is back in the cluster"


def test_uptime_drop_alone_counts_as_a_reboot() -> None:
    """A reboot between two polls, never seen unreachable: uptime tells."""
    state = start(["a"], {"a": OLD}, {"a": 5000.0}, 0.0)
    obs = observe(
        state, {"a": Reading(True, OLD, 12.0)}, {}, now=10.0, target=TARGET, standalone=True
    )
    node = obs.state["nodes"]["a"]
    assert node["uptime_dropped"] and node["rebooted"] and not node["seen_down"]
    assert obs.lines == ["a rebooted (uptime 12 s)"]
    assert not obs.done  # still on the old build


def test_in_cluster_needs_every_answering_view_to_agree() -> None:
    state = start(["a", "b"], {"a": OLD, "b": OLD}, {"a": 1.0, "b": 1.0}, 0.0)
    good = Overview((MemberStatus("a", True, "Leader"), MemberStatus("b", True, "Enabled")), 1)
    lagging = Overview(
        (MemberStatus("a", True, "Leader"), MemberStatus("b", True, STATUS_TRANSITIONING)), 1
    )
    readings = {"a": Reading(True, NEW, 2.0), "b": Reading(True, NEW, 2.0)}
    state["nodes"]["a"]["rebooted"] = state["nodes"]["b"]["rebooted"] = True
    obs = observe(state, readings, {"a": good, "b": lagging}, now=1, target=TARGET,
                  standalone=False)  # fmt: skip
    assert not obs.done and obs.state["nodes"]["b"]["status"] == "Enabled / Enabled, Transitioning"
    obs = observe(obs.state, readings, {"a": good, "b": good}, now=2, target=TARGET,
                  standalone=False)  # fmt: skip
    assert obs.done


def test_vip_flip_is_followed_and_reported() -> None:
    state = start(["a", "b"], {"a": OLD, "b": OLD}, {"a": 1.0, "b": 1.0}, 0.0, vip_home="a")
    hosts = ["a", "b", None, "a", "a"]
    lines: list[str] = []
    for i, host in enumerate(hosts):
        obs = observe(state, {}, {}, now=float(i), target=TARGET, standalone=False, vip_host=host)
        state = obs.state
        lines += [line for line in obs.lines if line.startswith("VIP")]
    assert lines == ["VIP moved from a to b", "VIP not answering", "VIP back on a"]
    assert [(f["from"], f["to"]) for f in state["vip"]["flips"]] == [("a", "b"), ("b", "a")]
    assert "VIP: on a" in last_report(state)


def test_not_done_while_the_vip_does_not_answer() -> None:
    state = start(["a"], {"a": OLD}, {"a": 1.0}, 0.0, vip_home="a")
    state["nodes"]["a"]["rebooted"] = True
    readings = {"a": Reading(True, NEW, 2.0)}
    assert not observe(state, readings, {}, now=1, target=TARGET, standalone=True).done
    assert observe(
        state, readings, {}, now=1, target=TARGET, standalone=True, vip_host="a"
    ).done


def test_last_report_names_each_node_state() -> None:
    state = start(["a", "b"], {"a": OLD, "b": OLD}, {"a": 1.0, "b": 1.0}, 0.0)
    readings, views = poll({"a": UP_NEW, "b": DOWN}, 3600.0, standalone=False)
    state = observe(state, readings, views, now=3600.0, target=TARGET, standalone=False).state
    report = last_report(state)
    assert report.startswith(f"a: up on {NEW}, uptime 9 s, Enabled; ")
    assert report.endswith(f"b: not answering since 01:00:00 UTC, last on {OLD}")


def test_a_node_answering_with_errors_is_not_back_yet() -> None:
    state = start(["a", "b"], {"a": OLD, "b": OLD}, {"a": 1.0, "b": 1.0}, 0.0)
    readings, views = poll({"a": UP_NEW, "b": UP_NEW}, 10.0, standalone=False)
    readings["b"] = Reading(True, error="HTTP 500: internal error")
    del views["b"]  # b's REST service is not up; a already lists it as Enabled
    obs = observe(state, readings, views, now=10.0, target=TARGET, standalone=False)
    assert not obs.done
    assert obs.state["nodes"]["b"]["last_seen"] == (
        f"answers with an error (HTTP 500: internal error), last on {OLD}"
    )
    readings, views = poll({"a": UP_NEW, "b": UP_NEW}, 20.0, standalone=False)
    assert observe(obs.state, readings, views, now=20.0, target=TARGET, standalone=False).done
