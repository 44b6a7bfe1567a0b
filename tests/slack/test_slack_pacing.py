"""Slack pacing per bucket against the stand-in's rate limits: a 429 on one channel's posts
holds only that channel's posts (until its Retry-After ran out), never posts to another
channel nor `chat.update`; a burst to many channels makes no call early."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack_api import PACE_HOLD_SECONDS, Pacer, bucket, make_client
from jobs.config.clock import SystemClock
from sim.slack.standin import create_standin_app
from sim.slack.store import RateLimit, StandinStore
from tests.fakes import bound_socket, make_settings, serve, url_of
from tests.fakes.clock import FakeClock


@dataclass
class Slack:
    store: StandinStore
    client: AsyncWebClient
    pacer: Pacer


async def _slack(tmp_path: Path, rate_limit: RateLimit | None) -> AsyncIterator[Slack]:
    sock = bound_socket()
    app = create_standin_app("http://127.0.0.1:9/slack/events", "s", rate_limit=rate_limit)
    server, task = await serve(app, sock)
    settings = make_settings(tmp_path, SLACK_BOT_TOKEN="xoxb-test-token",
                             SLACK_API_URL=url_of(sock) + "/api/")
    try:
        yield Slack(app.state.standin, make_client(settings), Pacer(SystemClock()))
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@pytest.fixture
async def slack(tmp_path: Path) -> AsyncIterator[Slack]:
    async for s in _slack(tmp_path, None):
        yield s


@pytest.fixture
async def limited(tmp_path: Path) -> AsyncIterator[Slack]:
    async for s in _slack(tmp_path, RateLimit(limit=1, window=1.0)):
        yield s


def test_buckets_are_per_channel_for_posts_and_per_method_otherwise() -> None:
    assert bucket("chat.postMessage", {"channel": "C1"}) != bucket(
        "chat.postMessage", {"channel": "C2"})
    assert bucket("chat.update", {"channel": "C1"}) == bucket("chat.update", {"channel": "C2"})


async def test_a_429_on_one_channel_delays_neither_other_channels_nor_updates(
    slack: Slack,
) -> None:
    s = slack
    edit = await s.pacer.call("chat.postMessage", s.client.chat_postMessage, channel="CB",
                              text="card")
    s.store.inject("chat.postMessage", "ratelimited", retry_after=2)
    held = asyncio.create_task(s.pacer.call(
        "chat.postMessage", s.client.chat_postMessage, channel="CA", text="held"))
    while not any(c.status == 429 for c in s.store.calls):
        await s.store.wait_change(s.store.version, 1)
    limited_at = next(c.at for c in s.store.calls if c.status == 429)
    await asyncio.wait_for(asyncio.gather(
        s.pacer.call("chat.postMessage", s.client.chat_postMessage, channel="CB", text="b"),
        s.pacer.call("chat.update", s.client.chat_update, channel="CB", ts=edit["ts"],
                     text="card, edited"),
    ), 1.0)  # well inside CA's Retry-After of 2 s
    assert not held.done()
    await asyncio.wait_for(held, 5)  # retried by the pacer once the Retry-After ran out
    posts_a = [c for c in s.store.calls_of("chat.postMessage") if c.args["channel"] == "CA"]
    assert [c.status for c in posts_a] == [429, 200]
    assert posts_a[1].at >= limited_at + 2
    others = [c for c in s.store.calls if c.args.get("channel") == "CB"]
    assert all(c.at < limited_at + 1 for c in others[1:]), "CB waited on CA's Retry-After"
    assert [c for c in s.store.calls if c.early] == []


async def test_a_burst_to_many_channels_makes_no_call_before_its_retry_after(
    limited: Slack,
) -> None:
    """The stand-in allows one post per second per channel: three posts to each of eight
    channels take about two seconds in all, and no call comes before a Retry-After ran out
    (each bucket has one call in flight, so it knows the last 429)."""
    s = limited
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.wait_for(asyncio.gather(*(
        s.pacer.call("chat.postMessage", s.client.chat_postMessage, channel=f"C{c}",
                     text=f"m{n}")
        for c in range(8) for n in range(3)
    )), 10)
    wall = loop.time() - started
    calls = s.store.calls_of("chat.postMessage")
    assert sum(c.ok for c in calls) == 24
    assert any(c.status == 429 for c in calls), "the stand-in did rate-limit"
    assert [c.public() for c in calls if c.early] == []
    assert wall < 3.5, wall  # one channel's wait is not added to another's


async def test_a_rate_limited_channel_is_paced_instead_of_meeting_a_429_every_other_post(
    limited: Slack,
) -> None:
    """One 429, then the channel's posts go out a little over a second apart and meet no
    other 429. (Before: every second post met a 429 and waited its one-second Retry-After,
    so six posts took about five 429s and five seconds more.)"""
    s = limited
    for n in range(6):
        await asyncio.wait_for(s.pacer.call(
            "chat.postMessage", s.client.chat_postMessage, channel="CP", text=f"m{n}"), 5)
    calls = s.store.calls_of("chat.postMessage")
    assert sum(c.ok for c in calls) == 6
    assert [c.status for c in calls].count(429) == 1, [c.status for c in calls]
    assert [c.public() for c in calls if c.early] == []
    # Another bucket (no 429 met) is not paced: a burst goes out at once.
    assert set(s.pacer.paced) == {bucket("chat.postMessage", {"channel": "CP"})}
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await s.pacer.call("chat.postMessage", s.client.chat_postMessage, channel="CQ", text="q")
    assert loop.time() - t0 < 0.5


def test_pacing_ends_after_the_hold_without_a_429() -> None:
    clock = FakeClock()
    pacer = Pacer(clock)
    key = "chat.postMessage:CP"
    pacer.paced[key] = (1.05, clock.monotonic() + PACE_HOLD_SECONDS)
    pacer.last_start[key] = clock.monotonic()
    assert pacer.delay(key) == pytest.approx(1.05)
    clock.advance(PACE_HOLD_SECONDS)
    assert pacer.delay(key) == 0 and key not in pacer.paced
