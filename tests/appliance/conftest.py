"""Fixtures for the appliance tests: an in-process simulator on port 0 and clients for it.

Test modules cannot import this file (pytest runs with --import-mode=importlib), so the
helpers are handed out through the `kit` fixture.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "support"))  # job_driver

from jobs.appliance.client import PpsClient
from jobs.appliance.policy import RetryPolicy, Timeouts
from jobs.config.inventory import Cluster, Node
from sim.pps.config import parse_config
from sim.pps.simulator import Simulator
from tests.fakes.clock import FakeClock

FAST = {"install_seconds": 0.1, "reboot_seconds": 0.3, "rejoin_seconds": 0.1}

StartSim = Callable[..., Awaitable[Simulator]]


def cluster_of(sim: Simulator, name: str, /, **overrides: Any) -> Cluster:
    """A `jobs.config.inventory.Cluster` pointing at the simulated cluster `name`."""
    c = sim.cluster(name)
    fields: dict[str, Any] = {
        "name": name,
        "mode": c.mode,
        "nodes": tuple(Node(n.name, n.url) for n in c.nodes),
        "username_env": "U",
        "password_env": "P",
        "realm": c.realm,
        "vip": c.vip_url or None,
    }
    fields.update(overrides)
    return Cluster(**fields)


def client_of(
    sim: Simulator,
    name: str,
    /,
    *,
    password: str | None = None,
    attempts: int = 3,
    clock: FakeClock | None = None,
    read: float = 5.0,
    **overrides: Any,
) -> PpsClient:
    """A client with quick retries (sleeps go to a FakeClock: no real waiting)."""
    c = sim.cluster(name)
    return PpsClient(
        cluster_of(sim, name, **overrides),
        c.username,
        c.password if password is None else password,
        retry=RetryPolicy(attempts=attempts, base=0.05, cap=0.2),
        timeouts=Timeouts(connect=2.0, read=read, transfer=10.0),
        clock=clock or FakeClock(),
    )


@pytest.fixture
async def start_sim() -> AsyncIterator[StartSim]:
    """`await start_sim({"c1": {...}}, **top)` starts a simulator; all stop at teardown."""
    sims: list[Simulator] = []

    async def start(clusters: dict[str, Any], **top: Any) -> Simulator:
        sim = Simulator(parse_config({"clusters": clusters, **top}, Path(".")))
        await sim.start()
        sims.append(sim)
        return sim

    yield start
    for sim in sims:
        await sim.stop()


async def wait_for(
    predicate: Callable[[], bool], within: float = 5.0, interval: float = 0.02
) -> None:
    """Poll `predicate` until true; fail the test after `within` seconds."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {within} s")
        await asyncio.sleep(interval)


class Kit:
    """The helpers above, for test functions."""

    FAST = FAST
    cluster_of = staticmethod(cluster_of)
    client_of = staticmethod(client_of)
    wait_for = staticmethod(wait_for)


@pytest.fixture
def kit() -> type[Kit]:
    return Kit
