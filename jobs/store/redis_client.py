"""The one Redis client factory: explicit timeouts, health checks and retries."""

from __future__ import annotations

import random

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# Blocking reads (XREADGROUP BLOCK) must stay below SOCKET_TIMEOUT.
SOCKET_TIMEOUT = 10.0
CONNECT_TIMEOUT = 5.0
HEALTH_CHECK_INTERVAL = 15
BLOCK_MS = 2000
# Waits of the loops that outlive Redis trouble (worker, notifier): exponential from
# BACKOFF_MIN, jittered; at most REDIS_PROBE_MAX while Redis is unreachable, so work and
# cards resume within about that long after it returns; at most BACKOFF_MAX otherwise.
BACKOFF_MIN, BACKOFF_MAX = 0.2, 10.0
REDIS_PROBE_MAX = 2.0
# Connections per process, and how long a command waits for one when all are in use.
# redis-py's own pool (100, no waiting) refused the 101st at once with MaxConnectionsError:
# 100 concurrent `/pps` commands beside the notifier's batch failed with "something went
# wrong" in the benchmark under load. A bot or worker rarely holds more than a few dozen.
MAX_CONNECTIONS = 256
POOL_WAIT_SECONDS = 5.0


def backoff(attempt: int, cap: float = BACKOFF_MAX) -> float:
    """Seconds to wait after `attempt` consecutive failures: exponential, capped, jittered."""
    base: float = min(cap, BACKOFF_MIN * 2.0 ** min(attempt, 10))
    return base * random.uniform(0.5, 1.0)


def make_redis(url: str, *, socket_timeout: float = SOCKET_TIMEOUT) -> aioredis.Redis:
    """An asyncio Redis client with the project's timeouts (responses decoded to str).

    `socket_timeout` is shortened only by tests that freeze Redis; keep it above BLOCK_MS.
    """
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=POOL_WAIT_SECONDS,
        decode_responses=True,
        socket_timeout=socket_timeout,
        socket_connect_timeout=CONNECT_TIMEOUT,
        health_check_interval=HEALTH_CHECK_INTERVAL,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries=3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
    # The client owns the pool: `aclose()` closes its connections too.
    return aioredis.Redis.from_pool(pool)
