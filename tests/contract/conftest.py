"""Contract test fixtures: a strict fake cluster and the real engine driving it.

Helpers live in contract_fake.py and contract_support.py (importable from these tests).
Real time, shrunk: fake installs 0.1 s, reboots 0.4 s, rejoins 0.2 s; PPS_POLL_SECONDS 0.1,
PPS_SETTLE_SECONDS 0.3.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "support"))

from contract_fake import ADMIN_PASSWORD, ADMIN_USER, VIP, FakeCluster, Knobs
from contract_support import CLUSTER, RUNNING, TARGET, Run, Start
from job_driver import fast_settings, run_worker

from jobs.appliance.client import PpsClient, make_appliance
from jobs.appliance.policy import RetryPolicy, Timeouts
from jobs.appliance.protocol import Appliance
from jobs.config.clock import SystemClock
from jobs.config.inventory import Cluster, parse_inventory
from jobs.store.keys import Keys
from jobs.store.wiring import redis_service
from jobs.worker.process import Worker

ENV = {"CT_USER": ADMIN_USER, "CT_PASS": ADMIN_PASSWORD}


@pytest.fixture
async def contract(
    redis: aioredis.Redis, prefix: str, keys: Keys, tmp_path: Path
) -> AsyncIterator[Start]:
    """`await contract(mode, nodes, vip=..., active=..., knobs=..., versions=..., **settings)`.

    `versions`: catalogue entries for the package of the `running` build and of TARGET.
    """
    async with AsyncExitStack() as stack:

        async def start(
            mode: str,
            nodes: list[str],
            *,
            vip: bool = False,
            active: int = 0,
            knobs: Knobs | None = None,
            versions: tuple[str, str] = ("9.1R17", "9.1R18"),
            rollback: str | None = "9.1R16 (build 26213)",
            running: str = RUNNING,
            cluster_edit: dict[str, Any] | None = None,
            read_timeout: float | None = None,
            **kw: Any,
        ) -> Run:
            firmware, packages = [], {}
            for version, build in zip(versions, (running, TARGET), strict=True):
                slug = version.replace(" (", "-").replace(" ", "").rstrip(")")
                path = tmp_path / "fw" / f"pps-{slug}.pkg"
                path.parent.mkdir(exist_ok=True)
                path.write_bytes(os.urandom(4096))
                sha = hashlib.sha256(path.read_bytes()).hexdigest()
                packages[sha] = build
                firmware.append({"version": version, "file": f"fw/{path.name}", "sha256": sha})
            fake = FakeCluster(
                mode,
                nodes,
                build=running,
                rollback=rollback,
                packages=packages,
                active=active,
                vip=vip,
                knobs=knobs,
            )
            await fake.start()
            stack.push_async_callback(fake.stop)
            cluster: dict[str, Any] = {
                "mode": mode,
                "nodes": [{"name": n, "url": fake.url(n)} for n in nodes],
                "username_env": "CT_USER",
                "password_env": "CT_PASS",
                **({"vip": fake.url(VIP)} if vip else {}),
                **(cluster_edit or {}),
            }
            data = {"clusters": {CLUSTER: cluster}, "firmware": firmware}
            inventory = parse_inventory(data, tmp_path, env=ENV)
            settings = fast_settings(prefix, tmp_path, **kw)

            def appliance(c: Cluster) -> Appliance:
                if read_timeout is None:
                    return make_appliance(c, env=ENV, settings=settings)
                user, password = c.credentials(ENV)  # the same client, shorter patience
                patience = Timeouts(connect=read_timeout, read=read_timeout)
                retry = RetryPolicy(base=0.01, cap=0.1)
                return PpsClient(c, user, password, timeouts=patience, retry=retry)

            worker = Worker(
                redis, settings, inventory, appliance_factory=appliance, name="ct", keys=keys
            )
            run_worker(stack, worker)
            service = redis_service(redis, settings, inventory, SystemClock(), keys)
            return Run(fake, service)

        yield start
