"""The shipped entry point through Redis restarts: two `ppsbot worker` processes (settings from
the environment, the product's Redis client with its 10 s socket timeout) upgrade a cluster of
the PPS simulator over HTTP while the private redis-server is SIGKILLed and restarted on the
same port and folder (AOF `appendfsync always`) at four points of the job: at the disable
gate, in the reboot watch (poll timers), in the settle wait (a durable timer) and at the
enable gate. The workers are never restarted. The simulator's own log must show one
disable, one install and one enable; the workers log each outage once and recover.

Prints one line per restart (`worker-processes point=... recovered=...s`) and the totals.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import yaml

from jobs.config.clock import SystemClock
from jobs.config.inventory import load_inventory
from jobs.config.settings import Settings
from jobs.rules.errors import StaleGate
from jobs.rules.model import GateKind, Job, State, Step
from jobs.service import JobService, UpgradeRequest
from jobs.store import lua
from jobs.store.keys import WORKER_GROUP, Keys
from jobs.store.redis_client import make_redis
from jobs.store.timers import Timers
from jobs.store.wiring import redis_service
from sim.pps.config import parse_config
from sim.pps.simulator import Simulator
from tests.engine.engine_support import worker_started
from tests.fakes import PPSBOT, child_env, sim_firmware
from tests.resilience.redis_process import RedisProcess

COMMIT_SHA = hashlib.sha1(lua.COMMIT.encode()).hexdigest()
KNOBS = {"install_seconds": 0.1, "reboot_seconds": 0.4, "rejoin_seconds": 0.1}
DOWN = 1.0  # longer than redis-py's own retries: the workers see the outage
APPROVER = "UAPP0002"


def _at_gate(step: Step) -> Callable[[Job], bool]:
    def pred(job: Job) -> bool:
        gate = job.open_gate()
        return gate is not None and gate.step is step

    return pred


def _waiting_in(step: Step) -> Callable[[Job], bool]:
    return lambda job: job.step is step and job.state is State.WAITING


POINTS: dict[str, Callable[[Job], bool]] = {
    "disable_gate": _at_gate(Step.GATE_DISABLE),
    "reboot_watch": _waiting_in(Step.WATCH_REBOOT),
    "settle": _waiting_in(Step.SETTLE),
    "enable_gate": _at_gate(Step.GATE_ENABLE),
}


@dataclass
class Procs:
    server: RedisProcess
    sim: Simulator
    service: JobService
    keys: Keys
    workers: list[subprocess.Popen[bytes]]
    logs: list[Path]
    redis: aioredis.Redis

    async def until(self, job_id: str, pred: Callable[[Job], bool], within: float) -> Job:
        """Poll (approving approval gates as a non-requester) until `pred(job)` holds."""
        deadline = time.monotonic() + within
        while True:
            job = await self.service.get(job_id)
            if pred(job):
                return job
            assert time.monotonic() < deadline, f"stuck: {job.state.value} at {job.step.value}"
            assert all(w.poll() is None for w in self.workers), self.log_text()
            gate = job.open_gate()
            if gate is not None and gate.kind is GateKind.APPROVAL:
                with contextlib.suppress(StaleGate):  # a worker moved it on meanwhile
                    await self.service.approve(job_id, gate.id, APPROVER)
            await asyncio.sleep(0.02)

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in self.logs)

    def writes(self, cluster: str) -> list[str]:
        return [f"{e.call}={e.detail}:{e.status}" for e in self.sim.cluster(cluster).log]


@pytest.fixture
async def procs(
    redis_process: Callable[..., RedisProcess], prefix: str, tmp_path: Path
) -> AsyncIterator[Procs]:
    server = redis_process()
    await server.start()
    sim = Simulator(parse_config({"clusters": {"east": {
        "mode": "active-passive", "nodes": ["east-a", "east-b"], "sessions": 40, "knobs": KNOBS,
    }}}, tmp_path))
    await sim.start()
    inventory_yml = yaml.safe_dump(sim.inventory(sim_firmware(tmp_path)))
    (tmp_path / "inventory.yml").write_text(inventory_yml)
    values = {
        "REDIS_URL": server.url, "PPS_REDIS_PREFIX": prefix,
        "PPS_INVENTORY": str(tmp_path / "inventory.yml"),
        "PPS_BACKUP_DIR": str(tmp_path / "backups"), "PPS_POLL_SECONDS": "0.1",
        "PPS_SETTLE_SECONDS": "2", "PPS_REBOOT_TIMEOUT_SECONDS": "20",
        "PPS_REMINDER_SECONDS": "60", "PPS_LEASE_SECONDS": "0.6",
        "PPS_WORKER_METRICS_PORT": "0",  # two workers on this host
    }
    env = {**os.environ, **values, **sim.credentials_env(), "LOG_FORMAT": "json"}
    workers, logs = [], []
    for i in (1, 2):
        log = tmp_path / f"worker{i}.log"
        with log.open("wb") as out:
            workers.append(await asyncio.to_thread(
                subprocess.Popen, [str(PPSBOT), "worker", "--name", f"proc-w{i}"],
                env=child_env(env), cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
            ))
        logs.append(log)
    redis = make_redis(server.url, socket_timeout=1.0)
    settings = Settings(_env_file=None, **values)  # type: ignore[arg-type]
    inventory = load_inventory(values["PPS_INVENTORY"], env={**sim.credentials_env()})
    keys = Keys(prefix)
    p = Procs(server, sim, redis_service(redis, settings, inventory, SystemClock(), keys), keys,
              workers, logs, redis)
    try:
        for log in logs:
            assert await worker_started(log, 20), p.log_text()
        yield p
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                await asyncio.to_thread(w.wait, 15)
            except subprocess.TimeoutExpired:
                w.kill()
        await redis.aclose()
        await sim.stop()


@pytest.mark.slow
async def test_resilience_worker_processes_through_four_redis_restarts(procs: Procs) -> None:
    p = procs
    job, _ = await p.service.create_job(UpgradeRequest("east", "UREQ0001", "C1"))
    lines = []
    for point, pred in POINTS.items():
        at_point = await p.until(job.id, pred, within=20)
        timers_before = await Timers(p.redis, p.keys).all(job.id)
        p.server.kill()
        await asyncio.sleep(DOWN)
        await p.server.start()
        t_up = time.monotonic()
        after = await p.service.get(job.id)
        assert (after.state, after.step) == (at_point.state, at_point.step), point
        if point.endswith("_gate"):  # nobody commits before the approval: cache still empty
            assert await p.redis.script_exists(COMMIT_SHA) == [False]
        if point == "settle":
            timers = await Timers(p.redis, p.keys).all(job.id)
            assert timers.get(at_point.wake_timer) == timers_before[at_point.wake_timer]
        mark = (at_point.state, at_point.step, at_point.updated_at)
        moved = await p.until(
            job.id, lambda j: (j.state, j.step, j.updated_at) != mark, within=20  # noqa: B023
        )
        lines.append(
            f"worker-processes point={point:<12} recovered={time.monotonic() - t_up:.2f}s "
            f"next={moved.step.value}/{moved.state.value}"
        )
    done = await p.until(job.id, lambda j: j.terminal, within=30)
    writes = p.writes("east")
    text = p.log_text()
    per_worker = await _outage_logs(p)
    groups = [g["name"] for g in await p.redis.xinfo_groups(p.keys.queue)]
    lines.append(
        f"worker-processes restarts={p.server.starts - 1} final={done.state.value} "
        f"disable={sum('login_permission=false' in w for w in writes)} "
        f"install={sum(w.startswith('install=') for w in writes)} "
        f"enable={sum('login_permission=true' in w for w in writes)} "
        f"outage_logs(down,up)={per_worker} alive={[w.poll() is None for w in p.workers]}"
    )
    print("\n".join(lines))
    assert done.state is State.SUCCEEDED, done.error
    assert sum("login_permission=false" in w for w in writes) == 1, writes
    assert sum(w.startswith("install=") for w in writes) == 1, writes
    assert sum("login_permission=true" in w for w in writes) == 1, writes
    assert all(w.poll() is None for w in p.workers), "a worker process ended"
    assert WORKER_GROUP in groups
    assert "work item crashed" not in text and "Traceback" not in text, text
    for down, up in per_worker:  # once per outage, not once per attempt
        assert down <= len(POINTS) and up == down, (per_worker, p.log_text())


async def _outage_logs(p: Procs) -> list[tuple[int, int]]:
    """Per worker: (outages logged, recoveries logged), once each worker has logged the
    recovery from its last outage (a worker still backing off logs it a moment later)."""
    deadline = time.monotonic() + 10
    while True:
        counts = [(lg.read_text().count("redis unreachable"),
                   lg.read_text().count("redis reachable again")) for lg in p.logs]
        if all(down == up for down, up in counts) or time.monotonic() > deadline:
            return counts
        await asyncio.sleep(0.1)
