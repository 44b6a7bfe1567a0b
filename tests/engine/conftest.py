"""Engine test fixtures (helpers live in engine_support.py, importable from these tests)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import redis.asyncio as aioredis

# pytest runs with --import-mode=importlib: make this folder's helper module importable.
sys.path.insert(0, str(Path(__file__).parent))

from engine_support import Engine, Stubs, crash_settings, make_inventory, make_settings

from jobs.config.inventory import Inventory
from jobs.config.settings import Settings
from jobs.service import JobService
from jobs.store.keys import Keys
from jobs.store.wiring import redis_service
from jobs.worker.process import Worker
from tests.fakes.clock import FakeClock


@pytest.fixture
def inventory(tmp_path: Path) -> Inventory:
    return make_inventory(tmp_path)


@pytest.fixture
def settings(prefix: str, tmp_path: Path) -> Settings:
    return make_settings(prefix, tmp_path)


@pytest.fixture
def service(
    redis: aioredis.Redis, settings: Settings, inventory: Inventory, clock: FakeClock, keys: Keys
) -> JobService:
    return redis_service(redis, settings, inventory, clock, keys)


@pytest.fixture
def stubs(clock: FakeClock, settings: Settings) -> Stubs:
    return Stubs(clock, settings)


@pytest.fixture
def stub_worker(
    redis: aioredis.Redis, keys: Keys, prefix: str, tmp_path: Path, inventory: Inventory,
    stubs: Stubs,
) -> Worker:
    """A worker named `w` on the test Redis running the stub steps, not started."""
    return Worker(redis, crash_settings(prefix, tmp_path), inventory, steps=stubs.registry(),
                  name="w", keys=keys)


@pytest.fixture
async def engine(
    redis: aioredis.Redis,
    keys: Keys,
    settings: Settings,
    inventory: Inventory,
    clock: FakeClock,
    stubs: Stubs,
) -> Engine:
    return await Engine(redis, keys, settings, inventory, clock, stubs.registry()).start()
