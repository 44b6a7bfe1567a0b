"""`FreshReads`: concurrent identical reads share one Redis read, never an older one.

A caller that asks while no read of its key is under way starts one. A caller that asks
while one is under way does not join it (its reads may have begun before a write the caller
has already seen acknowledged, such as the job its own `/pps upgrade` just made): it waits
for the next read of that key, which starts when the current one ends and is shared by every
caller that arrived meanwhile. So each answer comes from a read that began after the caller
asked, exactly as if it had read alone, and N concurrent callers cost at most two reads.
Nothing is kept once a read has answered: this is not a cache.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class FreshReads(Generic[T]):
    """Coalesces concurrent reads per key; every caller gets a read that began after it asked."""

    def __init__(self) -> None:
        self._running: dict[Hashable, asyncio.Future[T]] = {}
        self._next: dict[Hashable, asyncio.Future[T]] = {}

    async def read(self, key: Hashable, fn: Callable[[], Awaitable[T]]) -> T:
        """The result of `fn()` (or of an identical read, keyed `key`, begun after this call)."""
        running = self._running.get(key)
        if running is None:
            task = self._start(key, fn)
        else:
            task = self._next.get(key) or self._queue(key, running, fn)
        # Shielded: one caller cancelled (a client gone) does not cancel the others' read.
        return await asyncio.shield(task)

    def _start(self, key: Hashable, fn: Callable[[], Awaitable[T]]) -> asyncio.Future[T]:
        task = asyncio.ensure_future(fn())
        self._running[key] = task
        task.add_done_callback(lambda t: self._finished(key, t))
        return task

    def _queue(self, key: Hashable, running: asyncio.Future[T],
               fn: Callable[[], Awaitable[T]]) -> asyncio.Future[T]:
        async def after() -> T:
            with contextlib.suppress(BaseException):  # its outcome is its callers' business
                await asyncio.wait([running])
            return await fn()

        task = asyncio.ensure_future(after())
        self._next[key] = task
        return task

    def _finished(self, key: Hashable, task: asyncio.Future[T]) -> None:
        if self._running.get(key) is task:
            del self._running[key]
        if not task.cancelled():
            task.exception()  # retrieved: the callers saw it; no "never retrieved" warning
        queued = self._next.pop(key, None)
        if queued is not None:  # it starts now (its `after` wakes): it is the running read
            self._running[key] = queued
            queued.add_done_callback(lambda t: self._finished(key, t))
