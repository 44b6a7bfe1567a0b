"""The notifier's consumer name is per process (two bots on one host never share one), and
consumers left by stopped processes are deleted once they have nothing pending."""

from __future__ import annotations

import os
import socket
from typing import Any

import pytest
import redis.asyncio as aioredis

from bot.notifier.loop import Notifier, unique_consumer
from jobs.store.keys import NOTIFIER_GROUP, Keys
from tests.fakes.clock import FakeClock


def test_consumer_names_are_unique_per_process_and_say_where() -> None:
    a, b = unique_consumer(), unique_consumer()
    assert a != b
    assert a.startswith(f"bot-{socket.gethostname()}-{os.getpid()}-")


async def test_stopped_consumers_without_pending_entries_are_pruned(
    redis: aioredis.Redis, keys: Keys, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bot.notifier.loop.PRUNE_IDLE_MS", -1)  # any idle time counts
    stream = keys.events
    await redis.xgroup_create(stream, NOTIFIER_GROUP, id="0", mkstream=True)
    await redis.xadd(stream, {"x": "1"})
    await redis.xadd(stream, {"x": "2"})
    await redis.xreadgroup(NOTIFIER_GROUP, "bot-gone-busy", {stream: ">"}, count=1)  # pending
    await redis.xgroup_createconsumer(stream, NOTIFIER_GROUP, "bot-gone-idle")  # nothing
    entries = await redis.xreadgroup(NOTIFIER_GROUP, "bot-me", {stream: ">"}, count=1)
    await redis.xack(stream, NOTIFIER_GROUP, entries[0][1][0][0])  # nothing pending either
    me: Any = None
    notifier = Notifier(redis, me, me, keys, clock, "bot-me", reclaim_idle_ms=3_600_000)
    await notifier.prune()
    names = {c["name"] for c in await redis.xinfo_consumers(stream, NOTIFIER_GROUP)}
    assert names == {"bot-gone-busy", "bot-me"}
