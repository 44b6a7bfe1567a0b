"""Resilience fixtures: a private redis-server per test that the test may kill and restart.

Helpers live in resilience_support.py and redis_process.py (importable from these tests);
the engine's helpers (inventory, short timings, FakeCluster builder) come from tests/engine.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from jobs.rules.model import Step
from jobs.steps.base import StepFn
from jobs.worker import process as worker_mod
from tests.fakes import Recorder
from tests.resilience.redis_process import REDIS_SERVER, RedisProcess
from tests.resilience.resilience_support import Rig, start_rig, start_slack

StartRig = Callable[..., Awaitable[Rig]]


@pytest.fixture
def redis_process(tmp_path: Path) -> Iterator[Callable[..., RedisProcess]]:
    """`redis_process(persist=True, fsync="always")` -> a not yet started private server."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not on PATH: the Redis restart tests need their own server")
    made: list[RedisProcess] = []

    def make(**kw: Any) -> RedisProcess:
        proc = RedisProcess(tmp_path / f"redis-{len(made)}", **kw)
        made.append(proc)
        return proc

    yield make
    for proc in made:
        proc.kill()


@pytest.fixture
async def rig(
    redis_process: Callable[..., RedisProcess],
    prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[StartRig]:
    """`await rig(workers=2, persist=True, fsync="always", steps=None, slack=False,
    **settings)` -> a running `Rig` on a private Redis (`slack`: stand-in + notifier)."""
    async with AsyncExitStack() as stack:

        async def start(
            workers: int = 2,
            persist: bool = True,
            fsync: str = "always",
            steps: Mapping[Step, StepFn] | None = None,
            slack: bool = False,
            **settings: Any,
        ) -> Rig:
            server = redis_process(persist=persist, fsync=fsync)
            await server.start()
            log = Recorder()
            monkeypatch.setattr(worker_mod, "log", log)  # count the workers' log lines
            r = await start_rig(stack, server, prefix, tmp_path, workers, log, steps, **settings)
            if slack:
                r.slack = await start_slack(stack, r)
            return r

        yield start
