"""Resilience test support: in-process workers and a JobService on a private Redis, the
FakeCluster appliances they drive, and helpers to watch a job across Redis restarts.

Each worker has its own Redis client (as separate processes would) made by the product's
factory, with the socket timeout shortened to `SOCKET_TIMEOUT` so a frozen Redis is noticed
within a second; the blocking read (lease / 2) stays below it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.notifier.loop import Notifier
from jobs.appliance.config_tree import ConfigTree, TreeLimits
from jobs.appliance.protocol import ActiveUsers, Appliance, ExportKind, Overview, SystemInfo
from jobs.config.clock import SystemClock
from jobs.config.inventory import Cluster, Inventory
from jobs.config.settings import Settings
from jobs.rules.errors import StaleGate
from jobs.rules.model import GateKind, Job, Step
from jobs.service import JobService, UpgradeRequest
from jobs.steps.base import StepFn
from jobs.store.keys import NOTIFIER_GROUP, WORKER_GROUP, Keys
from jobs.store.redis_client import make_redis
from jobs.store.timers import Timers
from jobs.store.wiring import redis_service
from jobs.worker.process import Worker
from sim.slack.standin import create_standin_app
from sim.slack.store import Message, StandinStore
from tests.engine.engine_support import APPROVER, CLUSTERS, REQUESTER
from tests.fakes import (
    WORKER_TIMINGS,
    FakeCluster,
    Recorder,
    bound_socket,
    make_inventory,
    make_settings,
    new_fake,
    serve,
    url_of,
)
from tests.resilience.redis_process import RedisProcess

SOCKET_TIMEOUT = 1.0
FAKE_TIMINGS = {"install_seconds": 0.2, "reboot_seconds": 0.5, "rejoin_seconds": 0.2}


OnWrite = Callable[[str], Awaitable[None]]


class HookedAppliance:
    """A FakeCluster whose side effects call `rig.on_write("disable"|"install"|"enable")`
    right after the appliance accepted them, before the step commits (the worst moment)."""

    def __init__(self, fake: FakeCluster, rig: Rig) -> None:
        self.fake = fake
        self.rig = rig

    async def _after(self, what: str) -> None:
        if self.rig.on_write is not None:
            await self.rig.on_write(what)

    async def system_info(self, node: str) -> SystemInfo:
        return await self.fake.system_info(node)

    async def overview(self, node: str) -> Overview:
        return await self.fake.overview(node)

    async def active_users(self, node: str) -> ActiveUsers:
        return await self.fake.active_users(node)

    async def set_login_permission(self, node: str, enabled: bool) -> None:
        await self.fake.set_login_permission(node, enabled)
        await self._after("enable" if enabled else "disable")

    async def export_config(self, node: str, kind: ExportKind) -> bytes:
        return await self.fake.export_config(node, kind)

    async def config_tree(self, node: str, limits: TreeLimits) -> ConfigTree:
        return await self.fake.config_tree(node, limits)

    async def install(self, node: str, package: Path) -> None:
        await self.fake.install(node, package)
        await self._after("install")

    async def rollback(self, node: str) -> None:
        await self.fake.rollback(node)
        await self._after("rollback")

    async def aclose(self) -> None:
        return None


@dataclass
class Rig:
    """A private Redis, workers running against it, and the service a handler would use."""

    server: RedisProcess
    settings: Settings
    inventory: Inventory
    keys: Keys
    redis: aioredis.Redis
    service: JobService
    workers: list[Worker] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    fakes: dict[str, FakeCluster] = field(default_factory=dict)
    log: Recorder = field(default_factory=Recorder)
    on_write: OnWrite | None = None
    slack: SlackSide | None = None

    async def create(self, cluster: str = "east") -> Job:
        job, created = await self.service.create_job(UpgradeRequest(cluster, REQUESTER, "C1"))
        assert created
        return job

    async def job(self, job_id: str) -> Job:
        return await self.service.get(job_id)

    async def until(
        self, job_id: str, pred: Callable[[Job], bool], within: float = 20.0, approve: str = "open"
    ) -> Job:
        """Poll the job until `pred` holds, approving approval gates as an approver who is not
        the requester: `approve` "open" (as soon as open), "shown" (once the notifier posted
        the gate's message, as a human would click) or "no"."""
        deadline = time.monotonic() + within
        job: Job | None = None
        while True:
            with contextlib.suppress(RedisError):  # Redis may be down right now: look again
                job = await self.job(job_id)
                if pred(job):
                    return job
                if approve != "no":
                    await self.approve_open(job, shown=approve == "shown")
            if time.monotonic() > deadline:
                what = f"{job.state.value} at {job.step.value} {job.error}" if job else "unread"
                raise AssertionError(f"stuck: {what}")
            await asyncio.sleep(0.02)

    async def approve_open(self, job: Job, shown: bool = False) -> bool:
        gate = job.open_gate()
        if gate is None or gate.kind is not GateKind.APPROVAL or (shown and not gate.message_ts):
            return False
        with contextlib.suppress(StaleGate):  # a worker moved it on meanwhile
            await self.service.approve(job.id, gate.id, APPROVER)
        return True

    def effects(self, cluster: str = "east") -> tuple[int, int, int]:
        """(disable, install, enable) calls the appliance received."""
        fake = self.fakes[cluster]
        logins = [c["arg"] for c in fake.calls if c["method"] == "set_login_permission"]
        return logins.count("enabled=False"), fake.count("install"), logins.count("enabled=True")

    async def groups(self, stream: str) -> list[str]:
        """Consumer groups of a stream ([] when the stream does not exist)."""
        try:
            info = await self.redis.xinfo_groups(stream)
        except RedisError:
            return []
        return [str(g["name"]) for g in info]

    async def worker_groups_ok(self) -> bool:
        return WORKER_GROUP in await self.groups(self.keys.queue)

    async def notifier_groups_ok(self) -> bool:
        return NOTIFIER_GROUP in await self.groups(self.keys.events)

    async def timers(self, job_id: str) -> dict[str, float]:
        return await Timers(self.redis, self.keys).all(job_id)

    async def notifier_drained(self, within: float = 15.0) -> None:
        """Wait until the notifier has read and acknowledged every event on the stream."""
        deadline = time.monotonic() + within
        while True:
            pending = (await self.redis.xpending(self.keys.events, NOTIFIER_GROUP))["pending"]
            groups = await self.redis.xinfo_groups(self.keys.events)
            last = await self.redis.xrevrange(self.keys.events, count=1)
            if pending == 0 and groups and last and groups[0]["last-delivered-id"] == last[0][0]:
                return
            assert time.monotonic() < deadline, f"notifier did not drain: {pending} pending"
            await asyncio.sleep(0.05)

    def workers_running(self) -> bool:
        return all(not t.done() for t in self.tasks)

    def crashes(self) -> int:
        """`work item crashed` lines the workers logged (a bug or an unexpected answer)."""
        return self.log.count("work item crashed")


async def start_rig(
    stack: AsyncExitStack,
    server: RedisProcess,
    prefix: str,
    tmp: Path,
    workers: int,
    log: Recorder,
    steps: Mapping[Step, StepFn] | None = None,
    **overrides: Any,
) -> Rig:
    """Start `workers` in-process workers and a service on `server` (stopped at exit)."""
    values = {"PPS_SETTLE_SECONDS": 0.4, **overrides}
    settings = make_settings(tmp, prefix, timings=WORKER_TIMINGS, **values)
    inventory = make_inventory(tmp, CLUSTERS)
    keys = Keys(prefix)
    redis = make_redis(server.url, socket_timeout=SOCKET_TIMEOUT)
    stack.push_async_callback(redis.aclose)
    service = redis_service(redis, settings, inventory, SystemClock(), keys)
    rig = Rig(server, settings, inventory, keys, redis, service, log=log)

    def factory(cluster: Cluster) -> Appliance:
        if cluster.name not in rig.fakes:
            rig.fakes[cluster.name] = new_fake(cluster, SystemClock(), **FAKE_TIMINGS)
        return HookedAppliance(rig.fakes[cluster.name], rig)

    for i in range(workers):
        client = make_redis(server.url, socket_timeout=SOCKET_TIMEOUT)
        stack.push_async_callback(client.aclose)
        w = Worker(
            client,
            settings,
            inventory,
            appliance_factory=factory,
            steps=steps,
            name=f"w{i + 1}",
            keys=keys,
        )
        rig.workers.append(w)
        rig.tasks.append(asyncio.create_task(w.run()))
    stack.push_async_callback(_join, rig)  # runs first: stop the workers, then close
    return rig


async def _join(rig: Rig) -> None:
    for w in rig.workers:
        w.stop()
    await asyncio.wait_for(asyncio.gather(*rig.tasks, return_exceptions=True), 15)


# -- the notifier side: the Slack stand-in and a Notifier on the private Redis --------------
class HookedClient(AsyncWebClient):
    """A Web API client that calls `after_post(kwargs)` once Slack accepted a post."""

    after_post: Callable[[dict[str, Any]], Awaitable[None]] | None = None

    async def chat_postMessage(self, **kwargs: Any) -> AsyncSlackResponse:
        resp = await super().chat_postMessage(**kwargs)
        if self.after_post is not None:
            await self.after_post(kwargs)
        return resp


def is_gate(args: dict[str, Any]) -> bool:
    """A post with buttons (blocks as sent: slack_sdk models; as received: dicts)."""
    blocks = [b if isinstance(b, dict) else b.to_dict() for b in args.get("blocks") or []]
    return any(b.get("type") == "actions" for b in blocks)


@dataclass
class SlackSide:
    """The Slack stand-in's store, the client the notifier posts with, and the notifier."""

    store: StandinStore
    client: HookedClient
    notifier: Notifier
    task: asyncio.Task[None]

    def cards(self, job_id: str) -> list[Message]:
        """Top-level messages carrying the job's pps_job metadata."""
        return [
            m
            for msgs in self.store.channels.values()
            for m in msgs
            if m.thread_ts is None
            and m.metadata
            and m.metadata.get("event_payload", {}).get("job_id") == job_id
        ]

    def thread(self, card: Message) -> list[Message]:
        return [m for m in self.store.channels.get(card.channel, []) if m.thread_ts == card.ts]

    def posts(self) -> list[dict[str, Any]]:
        """Every accepted chat.postMessage, in order."""
        return [c.args for c in self.store.calls_of("chat.postMessage") if c.ok]

    def card_state(self, job: Job) -> str | None:
        """The state the job's card shows (its card by ts: ids restart after a data loss)."""
        cards = [c for c in self.cards(job.id) if c.ts == job.card_ts]
        return cards[0].metadata["event_payload"]["state"] if cards and cards[0].metadata else None


async def start_slack(stack: AsyncExitStack, rig: Rig, block_ms: int = 250) -> SlackSide:
    """Serve the Slack stand-in on a free port and run a Notifier (own Redis client)."""
    app = create_standin_app("http://127.0.0.1:9/slack/events", "unused-signing-secret")
    sock = bound_socket()
    server, serving = await serve(app, sock)

    async def stop_server() -> None:
        server.should_exit = True
        await asyncio.wait_for(serving, 10)

    stack.push_async_callback(stop_server)
    url = f"{url_of(sock)}/api/"
    client = HookedClient(token="xoxb-resilience", base_url=url, timeout=5)
    redis = make_redis(rig.server.url, socket_timeout=SOCKET_TIMEOUT)
    stack.push_async_callback(redis.aclose)
    service = redis_service(redis, rig.settings, rig.inventory, SystemClock(), rig.keys)
    notifier = Notifier(
        redis, service, client, rig.keys, SystemClock(), "bot-1", block_ms=block_ms
    )
    task = asyncio.create_task(notifier.run())

    async def stop_notifier() -> None:
        notifier.stop()
        await asyncio.wait_for(task, 10)

    stack.push_async_callback(stop_notifier)
    return SlackSide(app.state.standin, client, notifier, task)
