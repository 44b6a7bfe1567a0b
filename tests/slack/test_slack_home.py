"""The App Home tab and `/pps clusters` over real HTTP: the stand-in sends `app_home_opened`
(signed Events API, or a Socket Mode envelope), the bot publishes with `views.publish`, the
stand-in checks the view as Slack would; a job's state change republishes it for recent
viewers, coalesced. Real Redis; fleet readings are seeded through the store."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from typing import Any

from jobs.fleet.model import UNREACHABLE, ClusterReading, NodeReading
from jobs.store.fleet import FleetStore
from jobs.store.keys import Keys

StackFactory = Any
OLD, NEW = "9.1R17 (build 27583)", "9.1R18 (build 29865)"


def reading(cluster: str, *nodes: NodeReading, logins: bool | None = True,
            sessions: int | None = 412, at: float | None = None) -> ClusterReading:
    return ClusterReading(cluster=cluster, read_at=at or time.time(), nodes=nodes,
                          login_permission=logins, sessions=sessions)


async def seed(st: Any) -> None:
    """cluster-east: nodes disagree (one on the newest); lab: on an older build."""
    store = FleetStore(st.redis, st.keys)
    await store.save(reading("cluster-east",
                             NodeReading("east-a", NEW, OLD, "Leader"),
                             NodeReading("east-b", OLD, "9.1R16 (build 26213)", "Enabled")))
    await store.save(reading("lab", NodeReading("lab-1", OLD, None, "standalone"),
                             logins=False, sessions=3))


async def open_home(st: Any, user: str = "U_APPROVER1", **extra: Any) -> dict[str, Any]:
    resp = await st.http.post(f"{st.standin_url}/_standin/home_opened",
                              json={"user_id": user, **extra})
    body: dict[str, Any] = resp.json()
    assert resp.status_code == 200 and body["status"] == 200, body
    return body


async def home_of(st: Any, user: str, publishes: int = 1) -> dict[str, Any]:
    """The user's Home tab once it has been published `publishes` times."""
    async def published() -> dict[str, Any] | None:
        tab = st.store.homes.get(user)
        return tab.public() if tab is not None and tab.publishes >= publishes else None
    got: dict[str, Any] = await st.wait_for(published, what=f"home of {user} x{publishes}")
    return got


def text_of(view: dict[str, Any]) -> str:
    return json.dumps(view["blocks"], ensure_ascii=False)


def publish_calls(st: Any) -> list[Any]:
    return st.store.calls_of("views.publish")


async def test_slack_home_published_on_open_with_the_fleet(stack: StackFactory) -> None:
    st = await stack()
    await seed(st)
    await open_home(st)
    tab = await home_of(st, "U_APPROVER1")
    view, text = tab["view"], text_of(tab["view"])
    assert view["type"] == "home" and view["blocks"][0]["text"]["text"] == "PPS fleet"
    assert all(c.ok for c in publish_calls(st)), [c.error for c in publish_calls(st)]
    # Per cluster: mode, every node with build and status, logins, sessions, the marks.
    assert "*cluster-east* · active-passive" in text and "*lab* · standalone" in text
    assert f"• *east-a* — {NEW} · Leader · rollback {OLD}" in text
    assert f"• *east-b* — {OLD} · Enabled" in text
    assert "⚠️ nodes run different builds" in text and "⚠️ older than 9.1R18 (east-b)" in text
    assert "🔓 logins on · 412 sessions" in text and "🔒 *logins off* · 3 sessions" in text
    assert "No jobs yet." in text
    assert "marked: cluster-east, lab" in text
    # Only the opener got a view; the Messages tab is not ours to publish on.
    assert set(st.store.homes) == {"U_APPROVER1"}
    await open_home(st, "U_APPROVER2", tab="messages")
    assert "U_APPROVER2" not in st.store.homes
    assert await st.redis.zscore(st.keys.home_viewers, "U_APPROVER1") is not None


async def test_slack_home_republished_on_job_state_changes(stack: StackFactory) -> None:
    st = await stack()
    home = st.runtime.bot.home
    home.min_interval = 0.3  # coalescing window, shortened for the test
    await open_home(st)
    await home_of(st, "U_APPROVER1")
    resp = await st.command("upgrade lab")
    jid = json.loads(resp.text)["text"].split("`")[1]
    job = await st.job(jid)
    # The CREATED event republishes: the job, its step and a link to its card.
    async def shows_job() -> dict[str, Any] | None:
        tab = st.store.homes["U_APPROVER1"]
        return tab.public() if f"`{jid}`" in text_of(tab.view) else None
    tab = await st.wait_for(shows_job, what="home showing the job")
    card = (await st.job(jid)).card_ts
    link = f"{st.standin_url}/archives/{job.channel}/p{card.replace('.', '')}|card>"
    assert "queued at 1/11 Preflight checks" in text_of(tab["view"])
    assert link in text_of(tab["view"])
    # Aborting it republishes again: no active job, the last one cancelled.
    before = tab["publishes"]
    await st.ack_text(f"abort {jid}")
    async def shows_last() -> dict[str, Any] | None:
        tab = st.store.homes["U_APPROVER1"]
        done = tab.publishes > before and f"Last: `{jid}`" in text_of(tab.view)
        return tab.public() if done else None
    tab = await st.wait_for(shows_last, what="home showing the cancelled job")
    assert "🚫 cancelled" in text_of(tab["view"]) and "▶️" not in text_of(tab["view"])
    # Never more than one publish per user per window, and none refused by the stand-in.
    stamps = [c.at for c in publish_calls(st)]
    assert all(b - a >= 0.25 for a, b in itertools.pairwise(stamps)), stamps
    assert all(c.ok and not c.early for c in publish_calls(st))


async def test_slack_home_opens_coalesce_per_user(stack: StackFactory) -> None:
    st = await stack()
    st.runtime.bot.home.min_interval = 1.0
    for _ in range(4):
        await open_home(st)
    await home_of(st, "U_APPROVER1")
    await st.wait_for(lambda: _now(st.store.homes["U_APPROVER1"].publishes >= 2),
                      what="the coalesced second publish")
    await asyncio.sleep(0.3)
    calls = publish_calls(st)
    assert len(calls) == 2 and calls[1].at - calls[0].at >= 0.9, [c.at for c in calls]


async def test_slack_home_over_socket_mode(stack: StackFactory) -> None:
    st = await stack(socket=True)
    assert st.socket is not None
    await st.wait_for(lambda: _now(st.socket.connected), what="socket connection")
    body = await open_home(st, "U_STRANGER")
    assert body["transport"] == "socket"
    tab = await home_of(st, "U_STRANGER")
    assert "*cluster-east*" in text_of(tab["view"])


async def test_slack_clusters_reply_shows_the_same_facts(stack: StackFactory) -> None:
    st = await stack()
    await seed(st)
    store = FleetStore(st.redis, Keys(st.keys.prefix))
    await store.save(reading("lab", NodeReading("lab-1", error=UNREACHABLE),
                             logins=None, sessions=None))
    jid = json.loads((await st.command("upgrade cluster-east")).text)["text"].split("`")[1]
    text = await st.ack_text("clusters")
    assert "*Clusters* · 2 clusters · newest catalogue version 9.1R18" in text
    assert f"• *east-a* — {NEW} · Leader" in text and "⚠️ nodes run different builds" in text
    assert f"▶️ `{jid}` → 9.1R18: ⏳ queued at 1/11 Preflight checks" in text
    assert "• *lab-1* — ⚠️ unreachable" in text and "⚠️ could not read lab-1" in text
    assert "1 with a job" in text


async def _now(value: Any) -> Any:
    """`value` as the awaitable `Stack.wait_for` polls."""
    return value
