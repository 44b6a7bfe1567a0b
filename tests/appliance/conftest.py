"""Fixtures for the appliance tests: in-process simulators on port 0 (the helpers that
make clients for them live in appliance_support.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from sim.pps.config import parse_config
from sim.pps.simulator import Simulator

StartSim = Callable[..., Awaitable[Simulator]]


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
