"""Slack test fixtures: the bot under uvicorn on port 0, the Slack stand-in as Slack, real
Redis under the test prefix, and (when asked) an in-process engine worker.

Tests get running `Stack`s (slack_stack.py) from the `stack` fixture, a factory.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
import uvicorn

from bot.server import build
from bot.slack_api import make_client
from jobs.appliance.protocol import Appliance
from jobs.config.clock import SystemClock
from jobs.config.inventory import Cluster, Inventory
from jobs.store.keys import Keys
from sim.slack.standin import create_standin_app
from sim.slack.store import RateLimit
from tests.fakes import (
    FakeCluster,
    bound_socket,
    cluster_entry,
    make_inventory,
    make_settings,
    serve,
    url_of,
)
from tests.slack.slack_stack import (
    APP_TOKEN,
    EAST_CHANNEL,
    FAST_FAKE,
    PPS_CHANNEL,
    REQUESTER,
    SECRET,
    SLACK_TIMINGS,
    SOCKET_ACK_SECONDS,
    Stack,
    StackFactory,
)


@pytest.fixture
async def stack(
    redis: aioredis.Redis, keys: Keys, prefix: str, tmp_path: Path
) -> AsyncIterator[StackFactory]:
    """`await stack(worker=False, rate_limit=None, east_extra=None, lab_extra=None,
    notifier=True, inventory=None, appliance=None, socket=False, **settings)`: the extras
    are added to those clusters' inventory entries; `notifier=False` runs the bot without
    its notifier (tests drive their own); `inventory`/`appliance` replace the FakeCluster
    set-up; `socket=True` runs the bot in Socket Mode (SLACK_APP_TOKEN=APP_TOKEN) against
    the stand-in's Socket Mode server (`Stack.socket`)."""
    async with AsyncExitStack() as exits:

        async def start(
            *, worker: bool = False, rate_limit: RateLimit | None = None,
            east_extra: dict[str, Any] | None = None, lab_extra: dict[str, Any] | None = None,
            notifier: bool = True, inventory: Inventory | None = None,
            appliance: Callable[[Cluster], Appliance] | None = None, socket: bool = False,
            **overrides: Any,
        ) -> Stack:
            bot_sock, standin_sock = bound_socket(), bound_socket()
            bot_url, standin_url = url_of(bot_sock), url_of(standin_sock)
            standin = create_standin_app(bot_url + "/slack/events", SECRET,
                                         rate_limit=rate_limit,
                                         app_token=APP_TOKEN if socket else None,
                                         ack_timeout=SOCKET_ACK_SECONDS)
            if socket:
                overrides.setdefault("SLACK_APP_TOKEN", APP_TOKEN)
            settings = make_settings(tmp_path, prefix, timings=SLACK_TIMINGS, **{
                "SLACK_BOT_TOKEN": "xoxb-test-token", "SLACK_SIGNING_SECRET": SECRET,
                "SLACK_API_URL": standin_url + "/api/", "PPS_CHANNEL": PPS_CHANNEL,
                "PPS_APPROVERS": f"S_APPROVERS,{REQUESTER}", **overrides})
            inventory = inventory or make_inventory(tmp_path, {
                "cluster-east": cluster_entry("active-passive", ["east-a", "east-b"],
                                              channel=EAST_CHANNEL, **(east_extra or {})),
                "lab": cluster_entry("standalone", ["lab-1"], **(lab_extra or {})),
            }, versions=("9.1R17", "9.1R18"))
            rt = build(settings, redis, inventory, make_client(settings),
                       consumer=f"test-{prefix}", notifier=notifier)
            http = await exits.enter_async_context(httpx.AsyncClient(timeout=10))
            st = Stack(settings, redis, keys, inventory, rt, standin.state.standin, bot_url,
                       standin_url, http, socket=standin.state.socket if socket else None)
            for app, sock in ((standin, standin_sock), (rt.web, bot_sock)):
                server, task = await serve(app, sock)
                exits.push_async_callback(_stop, server, task)
            if worker:
                await _start_worker(st, exits, appliance)
            return st

        yield start


async def _stop(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    server.should_exit = True
    await asyncio.wait_for(task, 10)


async def _start_worker(
    st: Stack, exits: AsyncExitStack, appliance: Callable[[Cluster], Appliance] | None
) -> None:
    from jobs.worker.process import Worker

    def fake(cluster: Cluster) -> Appliance:
        if cluster.name not in st.fakes:
            st.fakes[cluster.name] = FakeCluster.for_cluster(cluster, SystemClock(), **FAST_FAKE)
        return st.fakes[cluster.name]

    w = Worker(st.redis, st.settings, st.inventory, appliance_factory=appliance or fake,
               name="slack-test-worker", keys=st.keys)
    task = asyncio.create_task(w.run())

    async def stop() -> None:
        w.stop()
        await asyncio.wait_for(task, 10)

    exits.push_async_callback(stop)
