"""Start and stop the acceptance stack: the simulator and the fake Slack on a background
loop, the inventory and environment a new user would write, `ppsbot bot` and workers as
processes; at the end, the processes, the servers and this run's Redis keys."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from pathlib import Path
from typing import Any

import httpx
import redis
import uvicorn
import yaml

from sim.pps.config import parse_config
from sim.pps.simulator import Simulator
from tests.acceptance.acceptance_fake_slack import FakeSlack
from tests.acceptance.acceptance_stack import (
    A1,
    A2,
    GROUP,
    PPS_CHANNEL,
    REQ,
    SECRET,
    TOKEN,
    Loop,
    Stack,
    wait_until,
)
from tests.fakes import REDIS_URL, bound_socket, free_port, serve, sim_firmware, url_of


def launch(tmp: Path, sim_clusters: dict[str, Any], *, channels: dict[str, str],
           workers: int, users_info: bool, extra_env: dict[str, str],
           minimal: bool = False, inventory_extra: dict[str, dict[str, Any]] | None = None,
           ) -> Stack:
    """Start simulator + fake Slack in a thread, then the bot and workers as processes.

    `minimal`: only the settings DESIGN §3 names that a new user would set (no backup dir,
    no log format) and `SLACK_API_URL` without its trailing slash."""
    loop = Loop()
    slack = FakeSlack(TOKEN, users_info=users_info, groups={GROUP: [A2, REQ]})
    sim = Simulator(parse_config({"clusters": sim_clusters}, tmp))
    slack_sock = bound_socket()
    slack_url = url_of(slack_sock)

    async def up() -> tuple[uvicorn.Server, asyncio.Task[None]]:
        await sim.start()
        return await serve(slack.app, slack_sock, lifespan="off")

    server, serving = loop.run(up())
    inv = sim.inventory(sim_firmware(tmp, folder="firmware"))
    for cluster, channel in channels.items():
        inv["clusters"][cluster]["channel"] = channel
    for cluster, extra in (inventory_extra or {}).items():
        inv["clusters"][cluster].update(extra)
    (tmp / "inventory.yml").write_text(yaml.safe_dump(inv))
    prefix = f"ppsacc:{uuid.uuid4().hex[:8]}:"
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp),
        "SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": f"{slack_url}/api/", "REDIS_URL": REDIS_URL,
        "PPS_REDIS_PREFIX": prefix, "PPS_INVENTORY": str(tmp / "inventory.yml"),
        "PPS_CHANNEL": PPS_CHANNEL, "PPS_APPROVERS": f"{A1},{GROUP}",
        "PPS_SETTLE_SECONDS": "0.5", "PPS_POLL_SECONDS": "0.2",
        "PPS_REBOOT_TIMEOUT_SECONDS": "20", "PPS_REMINDER_SECONDS": "0.5",
        "PPS_LEASE_SECONDS": "0.6", "PPS_BACKUP_DIR": str(tmp / "backups"),
        "PPS_USER_UPGRADES_PER_HOUR": "1000",  # one requester makes every job of the suite
        "PPS_WORKER_METRICS_PORT": "0",  # several workers on this host: no shared port
        "PORT": str(port), "LOG_FORMAT": "json", **sim.credentials_env(), **extra_env,
    }
    if minimal:
        del env["PPS_BACKUP_DIR"], env["LOG_FORMAT"]
        env["SLACK_API_URL"] = f"{slack_url}/api"
    st = Stack(tmp, loop, slack, sim, env, prefix, f"http://127.0.0.1:{port}", slack_url,
               shutdown=lambda: _shutdown(loop, sim, server, serving, slack_sock),
               minimal=minimal)
    try:
        st.start("bot", "bot")
        for i in range(workers):
            st.start(f"worker{i + 1}", "worker", "--name", f"acc-w{i + 1}")
        wait_until("the bot's /healthz", lambda: _healthy(st), 20, 0.1)
    except BaseException:
        teardown(st)
        raise
    return st


def _healthy(st: Stack) -> bool:
    for name, p in st.procs.items():
        if p.poll() is not None:
            raise AssertionError(f"{name} exited {p.returncode}:\n{st.logs()}")
    try:
        return st.http.get(f"{st.bot_url}/healthz").status_code == 200
    except httpx.HTTPError:
        return False


def _shutdown(loop: Loop, sim: Simulator, server: uvicorn.Server,
              serving: asyncio.Task[None], sock: socket.socket) -> None:
    async def down() -> None:
        server.should_exit = True
        await sim.stop()
        await serving

    try:
        loop.run(down())
    finally:
        loop.close()
        sock.close()


def teardown(st: Stack) -> None:
    """Stop processes and servers; delete this run's Redis keys."""
    try:
        st.stop()
    finally:
        st.shutdown()
        r = redis.Redis.from_url(REDIS_URL)
        try:
            for key in r.scan_iter(match=f"{st.prefix}*", count=500):
                r.delete(key)
        finally:
            r.close()
