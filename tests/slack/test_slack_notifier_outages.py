"""The notifier's pauses while Redis is unreachable (a narrow unit test: a scripted fake Redis
that fails or answers, and the pauses recorded instead of slept).

Each outage backs off from the start, and the pause while Redis is down never exceeds
`REDIS_PROBE_MAX`, so cards move again within about two seconds of Redis returning, however
many outages came before.
"""

from __future__ import annotations

from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from bot.notifier.loop import Notifier
from jobs.store.keys import Keys
from jobs.store.redis_client import BACKOFF_MIN, REDIS_PROBE_MAX
from tests.fakes import FakeClock


class ScriptedRedis:
    """Answers each call with the next item of `script`: True = Redis answers, False = down."""

    def __init__(self, script: list[bool], notifier: list[Notifier]) -> None:
        self.script = script
        self.notifier = notifier
        self.calls = 0

    def _next(self) -> None:
        if not self.script:
            self.notifier[0].stop()
            return
        self.calls += 1
        if not self.script.pop(0):
            raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379.")

    async def xgroup_create(self, *args: Any, **kw: Any) -> bool:
        self._next()
        return True

    async def xautoclaim(self, *args: Any, **kw: Any) -> list[Any]:
        self._next()
        return ["0-0", [], []]

    async def xreadgroup(self, *args: Any, **kw: Any) -> list[Any]:
        self._next()
        return []

    def register_script(self, script: str) -> Any:
        return None  # the card edits' scripts: never called here (no events)

    async def zrange(self, *args: Any, **kw: Any) -> list[Any]:
        return []  # no card waits for an edit (not part of the script)


async def test_each_redis_outage_backs_off_from_the_start_and_probes_often(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Outage 1: 8 failed attempts; then Redis answers (group, reclaim, a read, a read);
    # outage 2: 2 failed attempts; then it answers again.
    up = [True, True, True, True]
    script = [False] * 8 + up + [False] * 2 + up
    holder: list[Notifier] = []
    redis = ScriptedRedis(script, holder)
    n = Notifier(redis, None, None, Keys("t:"), FakeClock(), "n1")  # type: ignore[arg-type]
    holder.append(n)
    pauses: list[float] = []

    async def record(seconds: float) -> None:
        pauses.append(seconds)

    monkeypatch.setattr(n, "_pause", record)
    await n.run()
    assert len(pauses) == 10, pauses
    first, second = pauses[:8], pauses[8:]
    shortest = 2 * BACKOFF_MIN  # backoff(1), before jitter
    assert first[0] <= shortest and second[0] <= shortest, pauses  # each outage starts over
    assert max(first) > shortest, pauses  # grows while it lasts...
    assert max(pauses) <= REDIS_PROBE_MAX, pauses  # ...up to the probe cap, never 10 s
