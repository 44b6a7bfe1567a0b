"""Engine test support: settings, a three-cluster inventory, scripted stub steps, and an
`Engine` that drives the runner against the real Redis with a FakeClock (no sleeps)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from jobs.appliance.protocol import Appliance
from jobs.config.clock import Clock
from jobs.config.inventory import Cluster, Inventory, parse_inventory
from jobs.config.settings import Settings
from jobs.rules.errors import StaleGate
from jobs.rules.events import Event, EventKind
from jobs.rules.model import GateKind, Job, Step
from jobs.rules.outputs import (
    BackupOut,
    InstallOut,
    LoginsOut,
    PreflightOut,
    VerifyOut,
    WatchOut,
)
from jobs.service import JobService, UpgradeRequest
from jobs.steps.base import (
    Advance,
    AskApproval,
    AskOperator,
    Fail,
    Poll,
    StepContext,
    StepFn,
    StepResult,
)
from jobs.store.keys import Keys
from jobs.store.timers import Timers
from jobs.store.wiring import redis_runner, redis_service
from jobs.store.work_queue import WorkQueue
from jobs.worker.step_runner import AfterCommit
from tests.fakes.appliance import FakeCluster
from tests.fakes.clock import FakeClock

ENV = {"PPS_U": "admin", "PPS_P": "not-a-real-password"}
REQUESTER, APPROVER, OTHER = "UREQ", "UAPP", "UOTHER"
RUNNING = "9.1R17 (build 27583)"  # what the fake appliances run before the upgrade
TARGET_BUILD = "9.1R18 (build 29865)"  # what the 9.1R18 package installs


def new_fake(cluster: Cluster, clock: Clock, **kw: Any) -> FakeCluster:
    """A FakeCluster shaped like `cluster`, on 9.1R17, with the 9.1R18 package known."""
    base: dict[str, Any] = {
        "build": RUNNING,
        "packages": {"pps-9.1R18-package.pkg": TARGET_BUILD},
        "sessions": 412,
    }
    return FakeCluster.for_cluster(cluster, clock, **{**base, **kw})


def make_inventory(tmp: Path) -> Inventory:
    """Clusters `solo` (standalone), `east` (active-passive, VIP), `mesh` (active-active)."""
    return parse_inventory(inventory_data(tmp), tmp, env=ENV, check_files=True)


def inventory_data(tmp: Path) -> dict[str, Any]:
    """The inventory of `make_inventory` as YAML-ready data; writes the firmware files."""
    fw_dir = tmp / "firmware"
    fw_dir.mkdir(exist_ok=True)
    firmware = []
    for v in ("9.1R16", "9.1R17", "9.1R18"):
        f = fw_dir / f"pps-{v}-package.pkg"
        f.write_bytes(f"package {v}\n".encode() * 100)
        sha = hashlib.sha256(f.read_bytes()).hexdigest()
        firmware.append({"version": v, "file": f"firmware/{f.name}", "sha256": sha})

    def cluster(mode: str, nodes: list[str], **kw: Any) -> dict[str, Any]:
        return {
            "mode": mode,
            "nodes": [{"name": n, "url": f"https://{n}.example.net"} for n in nodes],
            "username_env": "PPS_U",
            "password_env": "PPS_P",
            **kw,
        }

    data = {
        "clusters": {
            "solo": cluster("standalone", ["solo-1"]),
            "east": cluster("active-passive", ["east-a", "east-b"], vip="https://vpn.example"),
            "mesh": cluster("active-active", ["mesh-1", "mesh-2", "mesh-3"]),
        },
        "firmware": firmware,
    }
    return data


def make_settings(prefix: str, tmp: Path, **kw: Any) -> Settings:
    base: dict[str, Any] = {
        "PPS_REDIS_PREFIX": prefix,
        "PPS_BACKUP_DIR": str(tmp / "backups"),
        "PPS_POLL_SECONDS": 10.0,
        "PPS_SETTLE_SECONDS": 300.0,
        "PPS_REBOOT_TIMEOUT_SECONDS": 1800.0,
        "PPS_REMINDER_SECONDS": 600.0,
        "PPS_LEASE_SECONDS": 30.0,
        "PPS_TWO_PERSON_RULE": True,
    }
    base.update(kw)
    return Settings(_env_file=None, **base)


# -- scripted stub steps ------------------------------------------------------------------
@dataclass
class Stubs:
    """Small stand-ins for the 11 steps: count side effects, poll a few times, fail on demand.

    `fail_at[step]` makes that step return Fail; `operator_at` makes it ask an operator
    until confirmed once; `polls` is how many times the reboot watch polls before done.
    """

    clock: FakeClock
    settings: Settings
    polls: int = 3
    fail_at: dict[Step, str] = field(default_factory=dict)
    operator_at: set[Step] = field(default_factory=set)
    effects: dict[str, int] = field(default_factory=dict)
    runs: list[Step] = field(default_factory=list)

    def effect(self, name: str) -> None:
        self.effects[name] = self.effects.get(name, 0) + 1

    def registry(self) -> dict[Step, StepFn]:
        return {s: self._make(s) for s in Step}

    def _make(self, step: Step) -> StepFn:
        async def run(ctx: StepContext) -> StepResult:
            self.runs.append(step)
            if step in self.fail_at:
                return Fail(self.fail_at[step])
            if step in self.operator_at:
                gate = ctx.job.latest_gate(step)
                if gate is None or gate.decision is None:
                    return AskOperator(instructions=f"do {step.value} by hand", reason="manual")
            return await self._body(step, ctx)

        return run

    async def _body(self, step: Step, ctx: StepContext) -> StepResult:
        now = self.clock.now()
        out = ctx.job.outputs
        match step:
            case Step.PREFLIGHT:
                return Advance(
                    outputs=PreflightOut(
                        acting_node=ctx.cluster.node_names[0],
                        builds_before={n: "9.1R17 (build 1)" for n in ctx.cluster.node_names},
                        preflight=[{"check": "auth", "ok": True}],
                        plan={"target": ctx.job.target},
                    ),
                    detail="all checks passed",
                )
            case Step.BACKUP:
                return Advance(outputs=BackupOut(backups=[{"file": "system.cfg", "size": 10}]))
            case Step.GATE_DISABLE | Step.GATE_ENABLE:
                return AskApproval(evidence={"summary": [f"{step.value} evidence"]})
            case Step.DISABLE_LOGINS | Step.INSTALL | Step.ENABLE_LOGINS:
                key = "install_sent_at" if step is Step.INSTALL else f"{step.value}_sent_at"
                if getattr(out, key) is None:  # check first: never twice
                    part = InstallOut if step is Step.INSTALL else LoginsOut
                    await ctx.checkpoint(part.model_validate({key: now}))
                    self.effect(step.value)
                return Advance(detail=f"{step.value} done")
            case Step.WATCH_REBOOT:
                seen = int((out.watch or {}).get("polls", 0))
                if seen < self.polls:
                    text = "node rebooted" if seen == 0 else None
                    polls = WatchOut(watch={"polls": seen + 1})
                    return Poll(self.settings.PPS_POLL_SECONDS, polls, text)
                return Advance(outputs=WatchOut(rejoined_at=now))
            case Step.SETTLE:
                until = float(out.rejoined_at or 0) + self.settings.PPS_SETTLE_SECONDS
                if now < until:
                    return Poll(until - now)
                return Advance()
            case Step.VERIFY:
                return Advance(outputs=VerifyOut(builds_after={"solo-1": "9.1R18 (build 2)"}))
            case _:
                return Advance()


# -- the engine driver --------------------------------------------------------------------
class Engine:
    """JobService + Runner + queue/timers on the test prefix, moved by a FakeClock."""

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        settings: Settings,
        inventory: Inventory,
        clock: FakeClock,
        steps: Mapping[Step, StepFn],
        appliances: Callable[[Cluster], Appliance] | None = None,
        after_commit: AfterCommit | None = None,
        consumer: str = "test-worker",
    ) -> None:
        self.redis, self.keys, self.clock, self.settings = redis, keys, clock, settings
        self.service = redis_service(redis, settings, inventory, clock, keys)
        self.fakes: dict[str, FakeCluster] = {}
        factory = appliances or self._fake_for
        self.runner = redis_runner(
            redis, keys, settings, inventory, clock, factory, steps, after_commit
        )
        self.queue = WorkQueue(redis, keys, consumer)
        self.timers = Timers(redis, keys)
        self.outcomes: list[str] = []

    def _fake_for(self, cluster: Cluster) -> Appliance:
        if cluster.name not in self.fakes:
            self.fakes[cluster.name] = FakeCluster.for_cluster(cluster, self.clock)
        return self.fakes[cluster.name]

    async def start(self) -> Engine:
        await self.queue.ensure_group()
        return self

    async def create(self, cluster: str = "solo", **kw: Any) -> Job:
        req = UpgradeRequest(
            cluster=cluster, requester=kw.pop("requester", REQUESTER), channel="C1", **kw
        )
        job, created = await self.service.create_job(req)
        assert created
        return job

    async def drain(self, limit: int = 1000) -> list[str]:
        """Handle every work item now in the stream (and those they add)."""
        done: list[str] = []
        for _ in range(limit):
            items = await self.queue.read(None, count=10)
            if not items:
                self.outcomes.extend(done)
                return done
            for item in items:
                outcome = await self.runner.handle(item)
                await self.queue.ack(item)
                done.append(outcome)
        raise AssertionError("queue did not drain")

    async def tick(self, seconds: float = 0.0) -> list[str]:
        """Move the clock, release due timers, drain."""
        self.clock.advance(seconds)
        await self.timers.release_due(self.clock.now())
        return await self.drain()

    async def job(self, job_id: str) -> Job:
        return await self.service.get(job_id)

    async def run_until(
        self, job_id: str, pred: Callable[[Job], bool], step: float = 5.0, limit: int = 5000
    ) -> Job:
        """Tick the clock by `step` until `pred(job)` holds."""
        await self.drain()
        for _ in range(limit):
            job = await self.job(job_id)
            if pred(job):
                return job
            await self.tick(step)
        raise AssertionError(f"condition not reached; job is {await self.job(job_id)}")

    async def gate(self, job_id: str) -> str:
        job = await self.job(job_id)
        gate = job.open_gate()
        assert gate is not None, f"no open gate on {job.state} {job.step}"
        return gate.id

    async def events(self, job_id: str, kind: EventKind | None = None) -> list[Event]:
        evs = await self.service.store.events(job_id)
        return [e for e in evs if kind is None or e.kind is kind]


def crash_settings(prefix: str, tmp: Path) -> Settings:
    """Short real timings for worker processes (crash matrix, in-process worker tests)."""
    return make_settings(
        prefix,
        tmp,
        PPS_POLL_SECONDS=0.05,
        PPS_SETTLE_SECONDS=0.3,
        PPS_REBOOT_TIMEOUT_SECONDS=30.0,
        PPS_REMINDER_SECONDS=60.0,
        PPS_LEASE_SECONDS=0.5,
    )


class TcpProxy:
    """A TCP forwarder to Redis that can be switched off and on: "Redis unreachable"."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.base_events.Server | None = None
        self._conns: set[asyncio.StreamWriter] = set()

    async def up(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for w in list(self._conns):
            w.close()
        self._conns.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._conns.update({writer, up_writer})

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def approve_until(
    svc: JobService, job_id: str, until: Callable[[Job], bool], within: float
) -> Job:
    """Real time: approve each open approval gate as a non-requester until `until(job)`
    holds or `within` seconds pass; returns the job as last read."""
    deadline = time.monotonic() + within
    while True:
        job = await svc.get(job_id)
        if until(job) or time.monotonic() > deadline:
            return job
        gate = job.open_gate()
        if gate is not None:
            assert gate.kind is GateKind.APPROVAL, f"unexpected operator step: {job.manual}"
            with contextlib.suppress(StaleGate):  # a worker moved it on meanwhile
                await svc.approve(job_id, gate.id, APPROVER)
        await asyncio.sleep(0.03)


async def worker_started(log_file: Path, within: float) -> bool:
    """Wait for a worker process to log `worker started` (its signal handlers are set)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        text = await asyncio.to_thread(log_file.read_text)
        if '"worker started"' in text:
            return True
        await asyncio.sleep(0.05)
    return False
