"""The fleet renderers: the App Home view and the `/pps clusters` reply stay valid Block
Kit within their limits (100 blocks for a view, 50 for a message) for small and big fleets,
mark what needs a look, and escape what the appliances said."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.render.commands import render_reply
from bot.render.fleet import card_link, cluster_text, fleet_blocks
from bot.render.home import home_view
from bot.render.limits import MAX_BLOCKS, MAX_HOME_BLOCKS
from handlers.replies import ClusterList
from jobs.config.inventory import Cluster, Node, parse_window
from jobs.fleet.model import UNREACHABLE, ClusterReading, NodeReading
from jobs.fleet.view import ClusterFacts, FleetFacts
from jobs.rules.model import Job, State, Step
from sim.slack.blocks import MessageInvalid, check_home_view, check_message

EVIL = "<!channel> & <@U0EVIL> <https://evil.example|click>"
T0 = 1_800_000_000.0
OLD, NEW = "9.1R17 (build 27583)", "9.1R18 (build 29865)"
TEAM = "https://acme.slack.com/"


def cluster(name: str, nodes: int = 2, window: str | None = None) -> Cluster:
    mode = "standalone" if nodes == 1 else "active-active"
    return Cluster(name=name, mode=mode, username_env="U", password_env="P",
                   nodes=tuple(Node(f"{name}-n{i}", f"https://{name}-n{i}") for i in range(nodes)),
                   window=parse_window(window) if window else None)


def job(jid: str, cluster_name: str, state: State, **kw: Any) -> Job:
    return Job(id=jid, cluster=cluster_name, target="9.1R18", requester="U_REQ", channel="C1",
               state=state, step=kw.pop("step", Step.WATCH_REBOOT), created_at=T0 - 3600,
               updated_at=T0, **kw)


def facts_for(n: int) -> FleetFacts:
    """`n` clusters of every kind: current, old, split builds, unreachable with hostile
    messages, logins off, with an active job, never read."""
    out = []
    for i in range(n):
        c = cluster(f"c{i:03d}")
        a, b = c.node_names
        kind = i % 6
        nodes = {
            0: (NodeReading(a, NEW, OLD, "Leader"), NodeReading(b, NEW, OLD, "Enabled")),
            1: (NodeReading(a, OLD, None, "Leader"), NodeReading(b, OLD, None, "Enabled")),
            2: (NodeReading(a, NEW, OLD, "Leader"), NodeReading(b, OLD, None, "Enabled")),
            3: (NodeReading(a, NEW, OLD, "Leader"), NodeReading(b, error=EVIL * 40)),
            4: (NodeReading(a, NEW, OLD, "Leader"), NodeReading(b, error=UNREACHABLE)),
        }.get(kind)
        reading = None if nodes is None else ClusterReading(
            c.name, T0 - 60, nodes, login_permission=None if kind == 4 else kind != 3,
            sessions=None if kind == 4 else 10 * i,
            error=None if kind != 4 else "active users: " + EVIL)
        active = job(f"J-{i:04d}", c.name, State.WAITING, card_ts="1800000000.000100") \
            if kind == 2 else None
        last = job(f"J-9{i:03d}", c.name, State.SUCCEEDED, finished_at=T0 - 100) \
            if kind in (0, 1) else None
        out.append(ClusterFacts(c, reading, active, last, "9.1R18"))
    return FleetFacts(tuple(out), "9.1R18", 300.0, T0)


def blob(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


@pytest.mark.parametrize("n", [1, 10, 60, 300])
def test_home_view_is_valid_within_100_blocks_and_names_every_cluster(n: int) -> None:
    facts = facts_for(n)
    view = home_view(facts, TEAM)
    check_home_view(view)  # the stand-in's check: what Slack would refuse
    assert len(view["blocks"]) <= MAX_HOME_BLOCKS
    text = blob(view["blocks"])
    for c in facts.clusters:
        assert f"*{c.cluster.name}*" in text
    assert "<!channel>" not in text
    if n >= 4:  # a hostile appliance message is shown, escaped
        assert "&lt;!channel&gt;" in text


@pytest.mark.parametrize("n", [2, 24, 60, 300])
def test_clusters_reply_is_valid_within_50_blocks(n: int) -> None:
    facts = facts_for(n)
    msg = render_reply(ClusterList(facts), TEAM)
    check_message(msg.kwargs())
    assert len(msg.blocks) <= MAX_BLOCKS
    text = blob(msg.blocks)
    assert all(f"*{c.cluster.name}*" in text for c in facts.clusters)
    assert "<!channel>" not in text


def test_layout_switches_from_full_to_dense_to_summary() -> None:
    small, mid, big = facts_for(10), facts_for(60), facts_for(300)
    full = fleet_blocks(small, 96, TEAM)
    assert [b.type for b in full] == ["divider", "section"] * 10
    dense = fleet_blocks(mid, 96, TEAM)
    assert [b.type for b in dense] == ["section"] * 60
    summary = [b.to_dict() for b in fleet_blocks(big, 96, TEAM)]
    assert len(summary) <= 96
    text = blob(summary)
    # Clusters worth a look (marked, in trouble, with a job) come first, in full.
    assert "worth a look shown in full" in text
    assert "• *c002-n1* —" in text  # c002: split builds and a job: shown with its nodes
    assert "• *c000-n0* —" not in text  # c000: all current and idle: one line only


def test_marks_for_split_and_old_builds_and_missing_nodes() -> None:
    facts = facts_for(6).clusters
    text = {f.cluster.name: cluster_text(f, T0, TEAM) for f in facts}
    assert "⚠️" not in text["c000"]
    assert "⚠️ older than 9.1R18\n" in text["c001"]  # every node: no node list
    assert "⚠️ nodes run different builds" in text["c002"]
    assert "⚠️ older than 9.1R18 (c002-n1)" in text["c002"]
    assert "⚠️ could not read c003-n1" in text["c003"] and "&lt;!channel&gt;" in text["c003"]
    assert "• *c004-n1* — ⚠️ unreachable" in text["c004"]
    assert "⚠️ logins unknown (active users: &lt;!channel&gt;" in text["c004"]
    assert "_Not read yet._" in text["c005"] and "• *c005-n0* — not read yet" in text["c005"]
    assert "Last: `J-9000` → 9.1R18 ✅ succeeded" in text["c000"]
    assert "🔒 *logins off* · 30 sessions" in text["c003"]
    assert "No jobs yet." in text["c004"]


def test_active_job_links_to_its_card_or_says_where_it_is() -> None:
    j = job("J-0007", "east", State.AWAITING_APPROVAL, step=Step.GATE_DISABLE,
            card_ts="1800000000.000100")
    assert card_link(j, TEAM) == f"<{TEAM}archives/C1/p1800000000000100|card>"
    assert card_link(j, None) == "card in <#C1>"
    j.card_ts = ""
    assert card_link(j, TEAM) == "card in <#C1>"
    f = ClusterFacts(cluster("east", window="Sat 01:00-05:00 Europe/Berlin"), None, j, None,
                     "9.1R18")
    text = cluster_text(f, T0, TEAM)
    assert "window Sat 01:00-05:00 Europe/Berlin" in text
    assert "▶️ `J-0007` → 9.1R18: ✋ awaiting approval at 4/11" in text


def test_a_view_over_100_blocks_is_refused_by_the_stand_in() -> None:
    view = home_view(facts_for(3), TEAM)
    too_many = {**view, "blocks": view["blocks"] * 40}
    with pytest.raises(MessageInvalid, match="invalid_arguments"):
        check_home_view(too_many)
    with pytest.raises(MessageInvalid):
        check_home_view({**view, "type": "modal"})


def test_clusters_reply_is_laid_out_once_per_fleet_reading(monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    # Concurrent `/pps clusters` share one reading (FleetView.facts): its reply is rendered
    # once for all of them; a new reading, or another workspace URL, is rendered anew.
    import bot.render.commands as commands

    layouts = 0
    real = commands.fleet_blocks

    def counted(*args: Any) -> Any:
        nonlocal layouts
        layouts += 1
        return real(*args)

    monkeypatch.setattr(commands, "fleet_blocks", counted)
    reading = facts_for(344)
    first = render_reply(ClusterList(reading), TEAM)
    assert render_reply(ClusterList(reading), TEAM) == first
    assert layouts == 1
    newer = facts_for(344)
    newer = FleetFacts(newer.clusters[:-1], newer.newest, newer.poll_seconds, T0 + 60)
    again = render_reply(ClusterList(newer), TEAM)
    assert layouts == 2 and again != first and "343 clusters" in again.text
    render_reply(ClusterList(newer), None)
    assert layouts == 3
    monkeypatch.setattr(commands, "_last_clusters", None)  # as rendered afresh: the same
    assert render_reply(ClusterList(reading), TEAM) == first
