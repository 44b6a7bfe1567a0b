"""Crash safety of the rollback call: a real worker process talking HTTP to the simulator is
SIGKILLed around the call, a second worker takes the job over, and the simulator's write
log shows the rollback was never sent twice.

- `sent`: killed right after the appliance accepted the call, before the step committed.
  The second worker reads the node (rebooting, or already on the rollback build) and
  watches; exactly one rollback call in the log.
- `checkpoint`: killed right after the intent was committed, before the call. The second
  worker finds the node untouched and asks an operator instead of calling; the operator
  rolls back in the console. No rollback call in the log.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import yaml

from jobs.config.clock import SystemClock
from jobs.config.inventory import load_inventory
from jobs.rules.events import EventKind
from jobs.rules.model import GateKind, State, Step
from jobs.service import JobService, UpgradeRequest
from jobs.store.keys import Keys
from jobs.store.wiring import redis_service
from sim.pps.config import parse_config
from sim.pps.packages import write_package
from sim.pps.simulator import Simulator
from tests.fakes import E2E_TIMINGS, PYTHON, ROOT, JobDriver, child_env, make_settings

REQUESTER, APPROVER = "UREQ0001", "UAPP0002"
RUNNING, ROLLBACK = "9.1R17 (build 27583)", "9.1R16 (build 26213)"
# Reboots long enough that the second worker finds the node still away (`sent`).
KNOBS = {"install_seconds": 0.1, "reboot_seconds": 2.0, "rejoin_seconds": 0.2}


class Driver(JobDriver):
    approver = APPROVER

    def __init__(self, service: JobService) -> None:
        self.service = service


async def start_worker(
    tmp: Path, prefix: str, redis_url: str, name: str, env: dict[str, str], kill_at: str | None
) -> asyncio.subprocess.Process:
    python = PYTHON
    args = ["-m", "tests.procedures.rollback_crash_worker", "--prefix", prefix]
    args += ["--redis-url", redis_url, "--inventory", str(tmp / "inventory.yml")]
    args += ["--backups", str(tmp), "--name", name]
    if kill_at:
        args += ["--kill-at", kill_at]
    with (tmp / f"{name}.log").open("wb") as log:  # the child keeps its own descriptor
        return await asyncio.create_subprocess_exec(
            str(python), *args, cwd=str(ROOT), stdout=log, stderr=log,
            env=child_env({**os.environ, **env}),
        )


async def stop(proc: asyncio.subprocess.Process) -> int | None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return await asyncio.wait_for(proc.wait(), 10)
    except TimeoutError:
        proc.kill()
        return None


def writes(sim: Simulator) -> dict[str, list[str]]:
    c = sim.cluster("east")
    out: dict[str, list[str]] = {n.name: [] for n in c.nodes}
    for e in c.log:
        out[e.node].append(f"{e.call}={e.detail}:{e.status}")
    return out


@pytest.mark.slow
@pytest.mark.timeout(90)
@pytest.mark.parametrize("kill_at", ["sent", "checkpoint"])
async def test_worker_killed_around_the_rollback_call_never_sends_it_twice(
    kill_at: str, redis: aioredis.Redis, prefix: str, keys: Keys, redis_url: str,
    tmp_path: Path,
) -> None:
    cfg = {"mode": "active-passive", "nodes": ["east-a", "east-b"], "sessions": 40,
           "knobs": KNOBS}
    async with Simulator(parse_config({"clusters": {"east": cfg}}, Path("."))) as sim:
        fw = []
        for version, build in (("9.1R17", 27583), ("9.1R18", 29865)):
            sha = write_package(tmp_path / "fw" / f"pps-{version}.pkg", version, build)
            fw.append({"version": version, "file": f"fw/pps-{version}.pkg", "sha256": sha})
        (tmp_path / "inventory.yml").write_text(yaml.safe_dump(sim.inventory(fw)))
        env = sim.credentials_env()
        inventory = load_inventory(tmp_path / "inventory.yml", env=env)
        settings = make_settings(tmp_path, prefix, timings=E2E_TIMINGS)
        service = redis_service(redis, settings, inventory, SystemClock(), keys)
        drive = Driver(service)
        job, _ = await service.create_job(
            UpgradeRequest("east", REQUESTER, "C1", procedure="rollback")
        )
        first = await start_worker(tmp_path, prefix, redis_url, "w1", env, kill_at)
        await drive.approve_at(job.id, Step.GATE_DISABLE)
        rc1 = await asyncio.wait_for(first.wait(), 30)
        assert rc1 == -signal.SIGKILL, (tmp_path / "w1.log").read_text()[-2000:]
        sent = [w for w in writes(sim)["east-a"] if w.startswith("rollback=")]
        assert sent == ([f"rollback={ROLLBACK}:202"] if kill_at == "sent" else [])

        second = await start_worker(tmp_path, prefix, redis_url, "w2", env, None)
        try:
            if kill_at == "checkpoint":
                gate = await drive.gate_at(job.id, Step.ROLLBACK, GateKind.CONFIRM)
                manual = [e.data for e in await service.store.events(job.id)
                          if e.kind is EventKind.MANUAL][-1]
                assert "never sends it twice" in manual["reason"], manual
                assert "still up on" in manual.get("saw", ""), manual
                await sim.console_rollback("east", "east-a")
                await service.confirm(job.id, gate, APPROVER)
            await drive.approve_at(job.id, Step.GATE_ENABLE)
            done = await drive.until(job.id, lambda j: j.settled, within=40)
        finally:
            rc2 = await stop(second)
    assert rc2 == 0
    assert done.state is State.SUCCEEDED, done.error
    detail: Any = done.step_record(Step.ROLLBACK).detail
    if kill_at == "sent":
        assert "not sent again" in detail, detail
    else:
        assert done.outputs.rollback_by == "operator", detail
    logins = ["login_permission=false:200", "login_permission=true:200"]
    rollback = [f"rollback={ROLLBACK}:202"] if kill_at == "sent" else []
    assert writes(sim) == {
        "east-a": ["export=system_config:200", "export=user_config:200", logins[0], *rollback,
                   logins[1]],
        "east-b": [],
    }
    assert [n.build for n in sim.cluster("east").nodes] == [ROLLBACK, ROLLBACK]
