"""A real worker process for the crash matrix (run by test_engine_crash.py, not by pytest).

It runs `jobs.worker.process.Worker` on the test's key prefix with short real timings. Its appliance
is a `FakeCluster` whose whole state lives in a Redis key of the prefix (restored before each
call, saved after, under a small lock), so a second worker process sees what the first one
did. With `--kill-at`, an `after_commit` hook SIGKILLs this process right after the chosen
commit: `<step>` = after the commit of that step's result, `poll:<n>` = after the n-th Poll
of the reboot watch; or right after an appliance side effect, before the step commits:
`sent:disable`, `sent:install`, `sent:enable`; or `intent:install`, right after the install
intent's checkpoint, before the upload. SIGTERM stops it cleanly (exit 0).

    crash_worker.py --prefix P --redis-url URL --inventory-dir D --cluster east [--kill-at S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import redis.asyncio as aioredis

from jobs.appliance.config_tree import ConfigTree, TreeLimits
from jobs.appliance.protocol import ActiveUsers, ExportKind, Overview, SystemInfo
from jobs.config.clock import SystemClock
from jobs.config.inventory import Cluster
from jobs.config.log import configure_logging
from jobs.rules.model import Job, Step
from jobs.steps.base import Poll, StepResult
from jobs.store.keys import Keys
from jobs.store.redis_client import make_redis
from jobs.worker.entry import run_until_signal
from jobs.worker.process import Worker
from tests.engine.engine_support import CLUSTERS
from tests.fakes import WORKER_TIMINGS, FakeCluster, make_inventory, make_settings, new_fake

T = TypeVar("T")
FAKE_TIMINGS = {"install_seconds": 0.2, "reboot_seconds": 0.4, "rejoin_seconds": 0.2}


def fake_key(keys: Keys, cluster: str) -> str:
    return keys.cache(f"fake:{cluster}")


class PersistentFake:
    """`Appliance` over a FakeCluster kept in Redis, shared by every process of one test."""

    def __init__(
        self, redis: aioredis.Redis, keys: Keys, cluster: Cluster, kill_after: str | None = None
    ) -> None:
        # "disable" | "install" | "rollback" | "enable": die once it is sent
        self.kill_after = kill_after
        self.redis = redis
        self.key = fake_key(keys, cluster.name)
        self.lock = self.key + ":lock"
        self.cluster = cluster

    async def _with(self, call: Callable[[FakeCluster], Awaitable[T]]) -> T:
        token = os.urandom(8).hex()
        for _ in range(2000):  # the lock is held for a few ms by the other process at most
            if await self.redis.set(self.lock, token, nx=True, px=2000):
                break
            await asyncio.sleep(0.005)
        try:
            raw = await self.redis.get(self.key)
            fake = (
                FakeCluster.restore(json.loads(raw), SystemClock())
                if raw
                else new_fake(self.cluster, SystemClock(), sessions=40, **FAKE_TIMINGS)
            )
            try:
                return await call(fake)
            finally:
                await self.redis.set(self.key, json.dumps(fake.snapshot()))
        finally:
            if await self.redis.get(self.lock) == token:
                await self.redis.delete(self.lock)

    async def system_info(self, node: str) -> SystemInfo:
        return await self._with(lambda f: f.system_info(node))

    async def overview(self, node: str) -> Overview:
        return await self._with(lambda f: f.overview(node))

    async def active_users(self, node: str) -> ActiveUsers:
        return await self._with(lambda f: f.active_users(node))

    async def set_login_permission(self, node: str, enabled: bool) -> None:
        await self._with(lambda f: f.set_login_permission(node, enabled))
        self._maybe_die("enable" if enabled else "disable")

    async def export_config(self, node: str, kind: ExportKind) -> bytes:
        return await self._with(lambda f: f.export_config(node, kind))

    async def config_tree(self, node: str, limits: TreeLimits) -> ConfigTree:
        return await self._with(lambda f: f.config_tree(node, limits))

    async def install(self, node: str, package: Path) -> None:
        await self._with(lambda f: f.install(node, package))
        self._maybe_die("install")

    async def rollback(self, node: str) -> None:
        await self._with(lambda f: f.rollback(node))
        self._maybe_die("rollback")

    def _maybe_die(self, what: str) -> None:
        # The side effect happened and is saved; the step's commit has not: the worst moment.
        if self.kill_after == what:
            os.kill(os.getpid(), signal.SIGKILL)

    async def aclose(self) -> None:
        return None


def kill_hook(kill_at: str | None) -> Callable[[Job, StepResult | None], Awaitable[None]]:
    """SIGKILL this process right after the chosen commit."""
    running: dict[str, Any] = {"step": None, "polls": 0}

    async def hook(job: Job, result: StepResult | None) -> None:
        if result is None:
            running["step"] = job.step  # a start (or checkpoint) commit of this step
            if kill_at == "intent:install" and job.outputs.install_sent_at is not None:
                os.kill(os.getpid(), signal.SIGKILL)  # the intent is saved, nothing sent
            return
        step = running["step"]
        if isinstance(result, Poll) and step is Step.WATCH_REBOOT:
            running["polls"] += 1
        if kill_at is None or kill_at.startswith("sent:"):
            return
        if kill_at.startswith("poll:"):
            hit = isinstance(result, Poll) and running["polls"] == int(kill_at[5:])
        else:
            hit = step is Step(kill_at) and not isinstance(result, Poll)
        if hit:
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


async def amain(args: argparse.Namespace) -> int:
    settings = make_settings(Path(args.inventory_dir), args.prefix, timings=WORKER_TIMINGS)
    inventory = make_inventory(Path(args.inventory_dir), CLUSTERS)
    keys = Keys(args.prefix)
    redis = make_redis(args.redis_url)
    kill_at: str | None = args.kill_at
    sent = kill_at[5:] if kill_at and kill_at.startswith("sent:") else None
    worker = Worker(
        redis,
        settings,
        inventory,
        appliance_factory=lambda c: PersistentFake(redis, keys, c, sent),
        name=args.name,
        keys=keys,
        after_commit=kill_hook(args.kill_at),
    )
    try:
        await run_until_signal(worker)
    finally:
        await redis.aclose()
    return 0


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--prefix", required=True)
    p.add_argument("--redis-url", required=True)
    p.add_argument("--inventory-dir", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--kill-at", default=None)
    args = p.parse_args()
    configure_logging("INFO", "json")
    return asyncio.run(amain(args))


if __name__ == "__main__":
    sys.exit(main())
