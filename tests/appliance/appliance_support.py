"""Appliance test helpers: a `Cluster` and a quick-retry `PpsClient` for a simulated
cluster, and a real-time wait for a condition."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from jobs.appliance.client import PpsClient
from jobs.appliance.policy import RetryPolicy, Timeouts
from jobs.config.inventory import Cluster, Node
from sim.pps.simulator import Simulator
from tests.fakes import FakeClock

FAST = {"install_seconds": 0.1, "reboot_seconds": 0.3, "rejoin_seconds": 0.1}


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


async def wait_for(
    predicate: Callable[[], bool], within: float = 5.0, interval: float = 0.02
) -> None:
    """Poll `predicate` until true; fail the test after `within` seconds."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {within} s")
        await asyncio.sleep(interval)
