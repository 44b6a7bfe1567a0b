"""`ppsbot worker`: settings, logging and the inventory, then one `Worker` until a signal."""

from __future__ import annotations

import asyncio
import signal

import structlog

from jobs.config.inventory import Inventory, InventoryError, load_inventory, log_warnings
from jobs.config.log import configure_logging
from jobs.config.settings import Settings, get_settings
from jobs.store.redis_client import make_redis
from jobs.worker.metrics_server import serve_worker_metrics
from jobs.worker.process import Worker

log = structlog.get_logger("jobs.worker.process")


async def run_until_signal(worker: Worker) -> None:
    """Run `worker` until SIGTERM or SIGINT asks it to stop (it then finishes its items)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)
    await worker.run()


async def _amain(settings: Settings, inventory: Inventory, name: str | None) -> int:
    redis = make_redis(settings.REDIS_URL)
    worker = Worker(redis, settings, inventory, name=name)
    server = await serve_worker_metrics(worker.tally, redis, settings, worker.name)
    try:
        await run_until_signal(worker)
    finally:
        if server is not None:
            await server.stop()
        await redis.aclose()
    return 0


def main(name: str | None = None) -> int:
    """`ppsbot worker`: run until SIGTERM/SIGINT, then finish the running steps and exit 0."""
    settings = get_settings()
    configure_logging(settings.LOG_LEVEL, settings.LOG_FORMAT)
    try:
        inventory = load_inventory(settings.PPS_INVENTORY)
    except InventoryError as exc:
        log.error("inventory is invalid", problems=exc.problems)
        return 2
    log_warnings(inventory)
    return asyncio.run(_amain(settings, inventory, name))
