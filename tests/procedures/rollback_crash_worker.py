"""A real worker process for the rollback crash test (run by test_rollback_crash.py, not by
pytest), talking HTTP to the simulator the test runs.

It runs `jobs.worker.process.Worker` with the real PPS client on the test's key prefix and
short real timings. With `--kill-at sent` it SIGKILLs itself right after the appliance
accepted the rollback call, before the step commits; with `--kill-at checkpoint`, right
after the rollback intent was committed, before the call. SIGTERM stops it (exit 0).

    rollback_crash_worker.py --prefix P --redis-url URL --inventory FILE --backups DIR
                             --name N [--kill-at sent|checkpoint]
Admin credentials come from the environment, as in production.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from jobs.appliance.client import PpsClient, make_appliance
from jobs.config.clock import SystemClock
from jobs.config.inventory import Cluster, load_inventory
from jobs.config.log import configure_logging
from jobs.config.settings import Settings
from jobs.rules.model import Job, Step
from jobs.steps.base import StepResult
from jobs.store.keys import Keys
from jobs.store.redis_client import make_redis
from jobs.worker.entry import run_until_signal
from jobs.worker.process import Worker
from tests.fakes import E2E_TIMINGS, make_settings

KILL_POINTS = ("sent", "checkpoint")


class DiesAfterRollback:
    """The real client; the process dies the moment the appliance accepted the rollback."""

    def __init__(self, inner: PpsClient) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def rollback(self, node: str) -> None:
        await self.inner.rollback(node)
        os.kill(os.getpid(), signal.SIGKILL)  # accepted, not committed: the worst moment


def appliance_factory(settings: Settings, kill_at: str | None) -> Callable[[Cluster], Any]:
    def make(cluster: Cluster) -> Any:
        client = make_appliance(cluster, settings=settings, clock=SystemClock())
        return DiesAfterRollback(client) if kill_at == "sent" else client

    return make


def after_commit(kill_at: str | None) -> Callable[[Job, StepResult | None], Awaitable[None]]:
    async def hook(job: Job, result: StepResult | None) -> None:
        # The checkpoint commit of the rollback step: the intent is recorded, nothing sent.
        intent = job.step is Step.ROLLBACK and job.outputs.rollback_sent_at is not None
        if kill_at == "checkpoint" and result is None and intent:
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


async def amain(args: argparse.Namespace) -> int:
    settings = make_settings(Path(args.backups), args.prefix, timings=E2E_TIMINGS)
    inventory = load_inventory(args.inventory)
    redis = make_redis(args.redis_url)
    worker = Worker(
        redis,
        settings,
        inventory,
        appliance_factory=appliance_factory(settings, args.kill_at),
        name=args.name,
        keys=Keys(args.prefix),
        after_commit=after_commit(args.kill_at),
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
    p.add_argument("--inventory", required=True)
    p.add_argument("--backups", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--kill-at", choices=KILL_POINTS, default=None)
    args = p.parse_args()
    configure_logging("INFO", "json")
    return asyncio.run(amain(args))


if __name__ == "__main__":
    sys.exit(main())
