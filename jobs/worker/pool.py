"""The worker's item pool: up to `size` work items at once, never two of one job at once.

Each admitted item runs in its own task under its own lease (the runner takes it). Items of
one job wait for each other in arrival order (a per-job lock in this process, besides the
Redis lease), so a slow step of one job (a throttled upload, a drip-feeding appliance)
delays only that job's later items, never another job's polls, gates, timers or reminders.

Shutdown (`close`): items already running finish (their leases are renewed meanwhile);
items admitted but not started are not run and are returned by `close` for the worker to
hand back to the queue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from jobs.store.work_queue import WorkItem

Handle = Callable[[WorkItem], Awaitable[None]]
OnError = Callable[[WorkItem, Exception], None]


class _JobGate:
    """One job's turn-taking: a lock and how many admitted items of the job hold it or wait."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class ItemPool:
    """Runs admitted work items concurrently, at most `size` admitted at a time."""

    def __init__(self, size: int, handle: Handle, on_error: OnError) -> None:
        self.size = max(1, size)
        self._handle = handle
        self._on_error = on_error
        self._items: dict[str, WorkItem] = {}  # item id -> item, admitted and not finished
        self._started: set[str] = set()  # ids of the items running now
        self._jobs: dict[str, _JobGate] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()
        self._closing = False
        self._woken = False

    @property
    def free(self) -> int:
        """How many more items may be admitted now."""
        return max(0, self.size - len(self._items))

    def items(self) -> list[WorkItem]:
        """Every admitted item not finished yet (running or waiting for its job's turn)."""
        return list(self._items.values())

    def running(self) -> list[WorkItem]:
        """The items whose step (or reminder) runs now."""
        return [self._items[i] for i in self._started if i in self._items]

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._items

    def submit(self, item: WorkItem) -> bool:
        """Admit `item` (False if it is admitted already, or the pool is closing)."""
        if self._closing or item.id in self._items:
            return False
        self._items[item.id] = item
        gate = self._jobs.setdefault(item.job_id, _JobGate())
        gate.users += 1
        task = asyncio.create_task(self._run(item, gate), name=f"item-{item.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _run(self, item: WorkItem, gate: _JobGate) -> None:
        try:
            async with gate.lock:
                if self._closing:
                    return  # never started: `close` returns it to be handed back
                self._started.add(item.id)
                try:
                    await self._handle(item)
                except Exception as exc:  # the item stays pending; reclaim retries it
                    self._on_error(item, exc)
                finally:
                    self._started.discard(item.id)
                    self._items.pop(item.id, None)
        finally:
            gate.users -= 1
            if gate.users == 0:
                self._jobs.pop(item.job_id, None)
            self._changed.set()

    def wake(self) -> None:
        """Make `wait_free` return from now on (the worker is stopping)."""
        self._woken = True
        self._changed.set()

    async def wait_free(self) -> None:
        """Return once an item may be admitted, or once `wake()` was called."""
        while self.free == 0 and not self._woken:
            self._changed.clear()
            await self._changed.wait()

    async def close(self) -> list[WorkItem]:
        """Let running items finish; return the admitted items that never started."""
        self._closing = True
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        left = list(self._items.values())
        self._items.clear()
        return left

    def cancel(self) -> None:
        """Cancel every task (the worker itself was cancelled): items stay pending."""
        for task in list(self._tasks):
            task.cancel()
