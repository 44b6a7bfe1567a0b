"""Shared fixtures: a real Redis (REDIS_URL) under a per-test key prefix, a fake clock.

Tests never flush a database: each test gets its own prefix and deletes only its own keys.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from jobs.store.keys import Keys
from jobs.store.redis_client import make_redis
from tests.fakes import FakeClock

REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")


@pytest.fixture
def redis_url() -> str:
    return REDIS_URL


@pytest.fixture
def prefix() -> str:
    return f"ppstest:{uuid.uuid4().hex[:10]}:"


@pytest.fixture
def keys(prefix: str) -> Keys:
    return Keys(prefix)


@pytest.fixture
async def redis(prefix: str) -> AsyncIterator[aioredis.Redis]:
    r = make_redis(REDIS_URL)
    try:
        await r.ping()
    except Exception as exc:  # pragma: no cover - environment problem, not a test result
        pytest.fail(f"Redis at {REDIS_URL} does not answer ({exc}); run via `make test`")
    yield r
    async for key in r.scan_iter(match=f"{prefix}*", count=500):
        await r.delete(key)
    await r.aclose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
