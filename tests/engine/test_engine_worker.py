"""The worker loop in-process with real (short) time: two workers finish a job together,
stop() finishes the current step, Redis outages are waited out quietly."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
import redis.asyncio as aioredis
import yaml
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from jobs.appliance.protocol import Appliance
from jobs.config.clock import SystemClock
from jobs.config.inventory import Cluster, Inventory
from jobs.config.settings import Settings
from jobs.procedures import UPGRADE
from jobs.rules.model import State, Step
from jobs.service import UpgradeRequest
from jobs.steps.base import StepContext, StepResult
from jobs.store.keys import Keys
from jobs.store.redis_client import BACKOFF_MAX, BACKOFF_MIN, REDIS_PROBE_MAX, backoff, make_redis
from jobs.store.wiring import redis_service
from jobs.store.work_queue import WorkItem
from jobs.worker import process as worker_mod
from jobs.worker.process import Worker, tick_seconds
from tests.engine.engine_support import (
    CLUSTERS,
    REQUESTER,
    Stubs,
    TcpProxy,
    approve_until,
    worker_started,
)
from tests.fakes import (
    ENV,
    PPSBOT,
    WORKER_TIMINGS,
    FakeCluster,
    Recorder,
    child_env,
    free_port,
    inventory_data,
    make_settings,
    new_fake,
)


def test_tick_and_backoff_are_bounded(settings: Settings) -> None:
    assert tick_seconds(settings) == 0.25  # production timings: four times a second
    fast = settings.model_copy(update={"PPS_POLL_SECONDS": 0.05, "PPS_LEASE_SECONDS": 0.5})
    assert tick_seconds(fast) == 0.05
    waits = [backoff(n) for n in range(1, 30)]
    assert min(waits) >= 0.2 and max(waits) <= BACKOFF_MAX
    assert backoff(12) >= BACKOFF_MAX / 2  # grows to the cap, never spins
    probes = [backoff(n, REDIS_PROBE_MAX) for n in range(1, 30)]
    assert max(probes) <= REDIS_PROBE_MAX  # Redis down: probed every <= 2 s


async def test_each_redis_outage_backs_off_from_the_start(
    stub_worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis answers the group check, then drops again before a read succeeded: the new
    outage starts from the shortest wait, and no wait exceeds the probe cap (a worker used
    to carry the count over and sit out up to 10 s after Redis had returned)."""
    w = stub_worker
    # ensure x6 down, ensure up, read down, ensure down, ensure up, read up -> stop
    script = [False] * 6 + [True, False, False, True, True]
    waits: list[float] = []

    async def scripted() -> None:
        if not script:
            w.stop()
        elif not script.pop(0):
            raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379.")

    async def record(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(w.queue, "ensure_group", scripted)
    monkeypatch.setattr(w, "_consume_once", scripted)
    monkeypatch.setattr(w, "_sleep", record)
    await asyncio.wait_for(w.run(), 10)
    assert len(waits) == 8, waits
    assert waits[6] <= 2 * BACKOFF_MIN, waits  # the second outage starts over
    assert max(waits) <= REDIS_PROBE_MAX, waits


async def test_two_workers_run_the_real_procedure_together(
    redis: aioredis.Redis, keys: Keys, prefix: str, tmp_path: Path, inventory: Inventory
) -> None:
    settings = make_settings(tmp_path, prefix, timings=WORKER_TIMINGS)
    fakes: dict[str, FakeCluster] = {}

    def factory(cluster: Cluster) -> Appliance:
        if cluster.name not in fakes:
            fakes[cluster.name] = new_fake(
                cluster, SystemClock(), install_seconds=0.2, reboot_seconds=0.3, rejoin_seconds=0.1
            )
        return fakes[cluster.name]

    workers = [
        Worker(redis, settings, inventory, appliance_factory=factory, name=f"w{i}", keys=keys)
        for i in (1, 2)
    ]
    tasks = [asyncio.create_task(w.run()) for w in workers]
    svc = redis_service(redis, settings, inventory, SystemClock(), keys)
    job, _ = await svc.create_job(UpgradeRequest("mesh", REQUESTER, "C1"))
    done = await approve_until(svc, job.id, lambda j: j.terminal, 20)
    for w in workers:
        w.stop()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert done.state is State.SUCCEEDED, done.error
    fake = fakes["mesh"]
    assert fake.count("install") == 1 and fake.count("set_login_permission") == 2
    assert sum(w.handled for w in workers) >= len(UPGRADE.steps)
    assert UPGRADE.impls  # the workers used the real registry by default


async def test_stop_finishes_the_current_step_then_returns(
    redis: aioredis.Redis,
    keys: Keys,
    prefix: str,
    tmp_path: Path,
    inventory: Inventory,
    stubs: Stubs,
) -> None:
    settings = make_settings(tmp_path, prefix, timings=WORKER_TIMINGS)
    entered, release = asyncio.Event(), asyncio.Event()
    real = stubs.registry()

    async def slow_backup(ctx: StepContext) -> StepResult:
        entered.set()
        await release.wait()
        return await real[Step.BACKUP](ctx)

    w = Worker(
        redis, settings, inventory, steps={**real, Step.BACKUP: slow_backup}, name="w", keys=keys
    )
    task = asyncio.create_task(w.run())
    svc = redis_service(redis, settings, inventory, SystemClock(), keys)
    job, _ = await svc.create_job(UpgradeRequest("solo", REQUESTER, "C1"))
    await asyncio.wait_for(entered.wait(), 5)
    w.stop()
    await asyncio.sleep(0.3)  # a heartbeat or two while the step is still running
    assert not task.done()
    release.set()
    await asyncio.wait_for(task, 5)
    after = await svc.get(job.id)
    assert after.step is Step.RECORD and after.state is State.QUEUED  # BACKUP committed
    assert stubs.runs.count(Step.RECORD) == 0  # nothing new started after stop()
    assert await w.queue.pending_count() == 0  # its item was acknowledged


async def test_redis_outage_is_waited_out_logged_once_and_work_resumes(
    redis: aioredis.Redis,
    keys: Keys,
    prefix: str,
    tmp_path: Path,
    inventory: Inventory,
    stubs: Stubs,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = urlparse(redis_url)
    proxy = TcpProxy(url.hostname or "localhost", url.port or 6379)
    await proxy.up()
    await proxy.down()  # Redis is "unreachable" from the start
    rec = Recorder()
    monkeypatch.setattr(worker_mod, "log", rec)
    db = (url.path or "/0").lstrip("/") or "0"
    client = make_redis(f"redis://127.0.0.1:{proxy.port}/{db}")
    settings = make_settings(tmp_path, prefix, timings=WORKER_TIMINGS)
    w = Worker(client, settings, inventory, steps=stubs.registry(), name="w", keys=keys)
    attempts = 0
    ensure = w.queue.ensure_group

    async def counting_ensure() -> None:
        nonlocal attempts
        attempts += 1
        await ensure()

    monkeypatch.setattr(w.queue, "ensure_group", counting_ensure)
    task = asyncio.create_task(w.run())
    try:
        await asyncio.sleep(2.0)
        downs = rec.events("unreachable")
        assert downs == ["redis unreachable; backing off"]
        assert 2 <= attempts <= 8, attempts  # backing off, not spinning
        # Work queued during the outage (through a healthy client) runs once Redis is back.
        svc = redis_service(redis, settings, inventory, SystemClock(), keys)
        job, _ = await svc.create_job(UpgradeRequest("solo", REQUESTER, "C1", dry_run=True))
        await proxy.up()
        done = await approve_until(svc, job.id, lambda j: j.terminal, 15)
        assert done.state is State.SUCCEEDED
        ups = rec.events("reachable again")
        assert ups == ["redis reachable again"]
    finally:
        w.stop()
        await asyncio.wait_for(task, 15)
        await client.aclose()
        await proxy.down()


async def test_ppsbot_worker_exits_0_on_sigterm(
    prefix: str, tmp_path: Path, redis_url: str
) -> None:
    """The real entry point: settings and inventory from the environment, `/healthz` and
    `/metrics` on PPS_WORKER_METRICS_PORT, SIGTERM -> exit 0."""
    inv = tmp_path / "inventory.yml"
    inv.write_text(yaml.safe_dump(inventory_data(tmp_path, CLUSTERS)))
    env = {
        **os.environ,
        **ENV,
        "REDIS_URL": redis_url,
        "PPS_REDIS_PREFIX": prefix,
        "PPS_INVENTORY": str(inv),
        "PPS_LEASE_SECONDS": "1",
        "LOG_FORMAT": "json",
        "PPS_WORKER_METRICS_PORT": str(port := free_port()),
        "HOST": "127.0.0.1",
    }
    with (tmp_path / "worker.log").open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            str(PPSBOT), "worker", "--name", "cli-worker", env=child_env(env), stdout=log,
            stderr=log,
        )
    # Signal handlers are installed before the worker logs that it started.
    log_file = tmp_path / "worker.log"
    if not await worker_started(log_file, 15):
        proc.kill()
        raise AssertionError(log_file.read_text())
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
        health = await http.get("/healthz")
        assert health.status_code == 200 and health.json()["worker"] == "cli-worker"
        metrics = await http.get("/metrics")
        assert metrics.status_code == 200 and "pps_logins_disabled 0.0" in metrics.text
        assert "pps_jobs_total" in metrics.text and "pps_escalations_total" in metrics.text
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(proc.wait(), 10) == 0
    text = (tmp_path / "worker.log").read_text()
    assert '"worker stopped"' in text and "not-a-real-password" not in text


async def test_a_commit_refused_by_redis_is_logged_once_until_an_item_runs_again(
    stub_worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis full: reads work, the item's commit is refused. Empty reads in between are no
    recovery: one 'crashed' line when it starts, one 'run again' when an item runs."""
    rec = Recorder()
    monkeypatch.setattr(worker_mod, "log", rec)
    w = stub_worker
    item = WorkItem("1-0", "J-0001", "step", "")
    reads = [[item], [], [], [item], [], [item]]  # the item comes back (reclaimed) twice
    handles = [False, False, True]  # refused, refused, then Redis has room again
    oom = ResponseError("OOM command not allowed when used memory > 'maxmemory'.")

    async def read(block_ms: int | None, count: int = 1) -> list[WorkItem]:
        if not reads:
            w.stop()
            return []
        return reads.pop(0)

    async def handle(it: WorkItem) -> None:
        if not handles.pop(0):
            raise oom

    async def no_wait(seconds: float) -> None:
        return None

    monkeypatch.setattr(w.queue, "read", read)
    monkeypatch.setattr(w, "_handle", handle)
    monkeypatch.setattr(w, "_sleep", no_wait)
    await asyncio.wait_for(w.run(), 10)
    events = rec.events()
    assert events.count("work item crashed") == 1, events
    assert events.count("work items run again") == 1, events
    assert events.index("work item crashed") < events.index("work items run again")
    assert handles == []


async def test_a_refused_announce_does_not_stop_consuming(
    stub_worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Presence is advice: Redis refusing the announce (full) at start leaves work running."""
    rec = Recorder()
    monkeypatch.setattr(worker_mod, "log", rec)
    w = stub_worker
    consumed = 0

    async def refuse(name: str) -> None:
        raise ResponseError("OOM command not allowed when used memory > 'maxmemory'.")

    async def consume() -> None:
        nonlocal consumed
        consumed += 1
        w.stop()

    monkeypatch.setattr(w.presence, "announce", refuse)
    monkeypatch.setattr(w, "_consume_once", consume)
    await asyncio.wait_for(w.run(), 10)
    assert consumed == 1
    assert "work item crashed" not in rec.events()
