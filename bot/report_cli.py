"""`ppsbot report <job-id> [--format md|json]`: print a job's change record.

The same record `/pps report` uploads to Slack (`jobs.report`), read from Redis with the
settings of the environment; JSON is the form a ticketing system imports (README, *Change
records*). Exit code 0 when printed, 1 when there is no such job, 2 when the settings
cannot be loaded or Redis does not answer. Reads only; never prints a secret.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import TextIO

from pydantic import ValidationError
from redis.exceptions import RedisError

from jobs.config.clock import SystemClock
from jobs.config.settings import Settings
from jobs.report import change_record
from jobs.store.job_store import JobStore
from jobs.store.keys import Keys
from jobs.store.redis_client import make_redis

FORMATS = ("md", "json")


async def render(settings: Settings, job_id: str, fmt: str) -> str | None:
    """The record of `job_id` in `fmt`, or None when there is no such job."""
    redis = make_redis(settings.REDIS_URL)
    try:
        clock = SystemClock()
        store = JobStore(redis, Keys(settings.PPS_REDIS_PREFIX), clock)
        record = await change_record(store, job_id, clock.now())
    finally:
        await redis.aclose()
    if record is None:
        return None
    if fmt == "json":
        return json.dumps(record.data, indent=2, ensure_ascii=False) + "\n"
    return record.markdown


def main(job_id: str, fmt: str = "md", out: TextIO | None = None) -> int:
    """Entry point of `ppsbot report`; returns the exit code."""
    out = out or sys.stdout
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"ppsbot report: invalid settings: {exc.error_count()} problem(s)", file=sys.stderr)
        return 2
    try:
        text = asyncio.run(render(settings, job_id, fmt))
    except (RedisError, OSError) as exc:
        print(f"ppsbot report: Redis does not answer at REDIS_URL ({type(exc).__name__})",
              file=sys.stderr)
        return 2
    if text is None:
        print(f"ppsbot report: no job {job_id} (unknown, or its records expired)",
              file=sys.stderr)
        return 1
    out.write(text)
    return 0
