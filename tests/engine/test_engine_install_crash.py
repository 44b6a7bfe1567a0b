"""A worker SIGKILLed right after the install intent's checkpoint, before the upload (issue
9.5): the next worker reads the acting node, finds it untouched, says so and asks for a
confirm; the install goes out once, after the confirm. The fake appliance's write log (kept
in Redis across the processes) counts the installs. Before: the next worker went straight
to the reboot watch and failed at the deadline with no install ever sent."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from jobs.config.clock import SystemClock
from jobs.rules.events import EventKind
from jobs.rules.model import GateKind, Job, State, Step
from jobs.service import JobService, UpgradeRequest
from jobs.store.keys import Keys
from jobs.store.wiring import redis_service
from tests.engine.crash_worker import fake_key
from tests.engine.engine_support import APPROVER, CLUSTERS, REQUESTER, approve_until
from tests.engine.test_engine_crash import start_worker
from tests.fakes import WORKER_TIMINGS, make_inventory, make_settings
from tests.fakes.appliance import FakeCluster


def confirm_gate(job: Job) -> str | None:
    gate = job.open_gate()
    if gate is not None and gate.kind is GateKind.CONFIRM and gate.step is Step.INSTALL:
        return gate.id
    return None


async def wait_for(
    svc: JobService, job_id: str, pred: Callable[[Job], object], within: float
) -> Job:
    deadline = time.monotonic() + within
    while True:
        job = await svc.get(job_id)
        if pred(job) or time.monotonic() > deadline:
            return job
        await asyncio.sleep(0.03)


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_killed_after_the_intent_the_install_goes_out_once_after_a_confirm(
    redis: aioredis.Redis, prefix: str, keys: Keys, redis_url: str, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, prefix, timings=WORKER_TIMINGS)
    svc = redis_service(redis, settings, make_inventory(tmp_path, CLUSTERS), SystemClock(), keys)
    job, _ = await svc.create_job(UpgradeRequest("east", REQUESTER, "C1"))
    first = await start_worker(prefix, tmp_path, redis_url, "w1", "intent:install")
    waiter = asyncio.create_task(first.wait())
    await approve_until(svc, job.id, lambda j: waiter.done(), 30)
    if not waiter.done():
        first.kill()
    assert await waiter == -signal.SIGKILL, (tmp_path / "w1.log").read_text()[-2000:]
    died = await svc.get(job.id)
    assert died.step is Step.INSTALL and died.outputs.install_sent_at is not None

    second = await start_worker(prefix, tmp_path, redis_url, "w2", None)
    try:
        asked = await wait_for(svc, job.id, confirm_gate, 20)
        gate = confirm_gate(asked)
        assert gate is not None, f"no confirm at the install: {asked.state} {asked.error}"
        assert await _installs(redis, keys) == []  # nothing sent without a human
        confirmed = await svc.confirm(job.id, gate, APPROVER)
        decided = confirmed.gate(gate)
        assert decided is not None and decided.decided_at is not None
        done = await approve_until(svc, job.id, lambda j: j.settled, 30)
    finally:
        second.send_signal(signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(second.wait(), 10)
    assert done.state is State.SUCCEEDED, done.error
    sent = await _installs(redis, keys)
    assert len(sent) == 1, sent
    assert sent[0] >= decided.decided_at  # the only install came after the confirm
    manual = [e.data for e in await svc.store.events(job.id) if e.kind is EventKind.MANUAL]
    assert len(manual) == 1 and "no sign of the install" in manual[0]["saw"]
    assert "east-a runs 9.1R17" in manual[0]["saw"]


async def _installs(redis: aioredis.Redis, keys: Keys) -> list[float]:
    raw = await redis.get(fake_key(keys, "east"))
    if raw is None:
        return []
    fake = FakeCluster.restore(json.loads(raw), SystemClock())
    return [c["at"] for c in fake.calls if c["method"] == "install"]
