"""Fixtures for the rollback's end-to-end tests: the PPS simulator (real HTTP), the real PPS
client, an in-process worker, `JobService` and Redis under the test prefix.

Test modules cannot import this file (--import-mode=importlib); they get a `SimStack`
factory through the `sim_stack` fixture.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from jobs.rules.model import Job
from jobs.service import UpgradeRequest
from jobs.store.keys import Keys
from tests.appliance.appliance_e2e import REQUESTER, Run, start_run


class SimStack(Run):
    """One set-up: simulator, inventory, service, a running worker; and `/pps rollback`."""

    async def rollback(
        self, cluster: str, *, dry_run: bool = False, at: float | None = None
    ) -> Job:
        """`/pps rollback <cluster>` as the handler asks for it."""
        job, created = await self.service.create_job(
            UpgradeRequest(
                cluster=cluster,
                requester=REQUESTER,
                channel="C0RB",
                dry_run=dry_run,
                at=at,
                procedure="rollback",
            )
        )
        assert created and job.procedure == "rollback"
        return job


StartStack = Callable[..., Awaitable[SimStack]]


@pytest.fixture
async def sim_stack(
    redis: aioredis.Redis, prefix: str, keys: Keys, tmp_path: Path
) -> AsyncIterator[StartStack]:
    """`await sim_stack({"c": {...sim cluster...}}, inventory_edit, **settings)`."""
    async with AsyncExitStack() as stack:

        async def start(
            clusters: dict[str, Any], inventory_edit: dict[str, Any] | None = None, **kw: Any
        ) -> SimStack:
            run = await start_run(stack, redis, prefix, keys, tmp_path, clusters,
                                  inventory_edit, make=SimStack, **kw)
            assert isinstance(run, SimStack)
            return run

        yield start
