"""Injectable time: `Clock` for wall time, monotonic time and sleeping; `FakeClock` for tests."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """Where the engine reads time. Wall time is epoch seconds (float)."""

    def now(self) -> float: ...

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def ms(seconds: float) -> int:
    """Seconds to integer milliseconds (Redis scores and PX values)."""
    return round(seconds * 1000)
