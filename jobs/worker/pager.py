"""The escalation webhook, sent by whichever worker gets a `page` item, off the job's path.

Delivery: at least once until the receiver answers 2xx, at most once after that. Before
each attempt the next one is put on a durable timer (`page` kind, backoff from
`first_retry`, doubling, capped); the POST itself runs in a background task, so the worker
goes on with its queue and the job never waits on the webhook. A 2xx (or a refusal no
retry can fix, or the last attempt) settles the call in `jobs.store.page_marks`, and
every later attempt of it is skipped. PagerDuty drops a repeated `trigger` with the same
`dedup_key`, so the rare double send (a worker dying right after a 2xx) is harmless.

A `resolve` waits until its `trigger` is settled and is sent only if the trigger was; a
trigger still unsent when logins are already back on is dropped (nothing left to page).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import httpx
import structlog

from jobs.config.clock import Clock
from jobs.config.settings import Settings
from jobs.rules.escalation import RESOLVE, TRIGGER, page_body, page_member, parse_page_token
from jobs.store.ports import JobCommits, TimerSchedule, WorkItem
from jobs.worker import metrics
from jobs.worker.webhook import Delivery, post_event

FIRST_RETRY_SECONDS = 15.0  # above the webhook timeout: one attempt at a time
RETRY_CAP_SECONDS = 300.0
MAX_ATTEMPTS = 12  # about 45 minutes of retries
SENT, SKIPPED, FAILED = "sent", "skipped", "failed"
# Outcomes of `Pager.handle`, for logs and tests.
PAGING = "paging"
WAITING = "waiting"  # a resolve waiting for its trigger
DONE = "done"  # settled already: nothing to send

Poster = Callable[[str, dict[str, Any]], Awaitable[Delivery]]

log = structlog.get_logger("jobs.worker.pager")


class Marks(Protocol):
    """How each call of a job ended (`jobs.store.page_marks.PageMarks`)."""

    async def outcome(self, job_id: str, action: str) -> str | None: ...

    async def settle(self, job_id: str, action: str, outcome: str) -> bool: ...


class Pager:
    """Sends `trigger` and `resolve` for the jobs' `page` items (`PageSender`)."""

    def __init__(
        self,
        store: JobCommits,
        timers: TimerSchedule,
        marks: Marks,
        settings: Settings,
        clock: Clock,
        post: Poster | None = None,
        *,
        first_retry: float = FIRST_RETRY_SECONDS,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self.store = store
        self.timers = timers
        self.marks = marks
        self.settings = settings
        self.clock = clock
        self.first_retry = first_retry
        self.max_attempts = max_attempts
        self._client: httpx.AsyncClient | None = None
        self._post = post or self._default_post
        self._inflight: set[tuple[str, str]] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def _default_post(self, url: str, body: dict[str, Any]) -> Delivery:
        if self._client is None:
            self._client = httpx.AsyncClient()
        return await post_event(self._client, url, body)

    def retry_delay(self, attempt: int) -> float:
        """Seconds from attempt `attempt` to the next one."""
        return min(RETRY_CAP_SECONDS, self.first_retry * 2.0 ** (attempt - 1))

    async def handle(self, item: WorkItem) -> str:
        """Start one attempt of a `page` item (the POST runs in the background)."""
        action, attempt = parse_page_token(item.token)
        job_id, url = item.job_id, self.settings.PPS_ESCALATION_WEBHOOK
        if not url or action not in (TRIGGER, RESOLVE):
            return SKIPPED
        if await self.marks.outcome(job_id, action) is not None:
            return DONE
        now = self.clock.now()
        if (job_id, action) in self._inflight:  # still waiting on our own POST: look later
            await self.timers.schedule(item.member, now + self.retry_delay(attempt))
            return WAITING
        snap = await self.store.load(job_id)
        if snap is None:
            await self.marks.settle(job_id, action, SKIPPED)
            return SKIPPED
        job = snap.job
        if action == RESOLVE:
            trigger = await self.marks.outcome(job_id, TRIGGER)
            if trigger is None and attempt < self.max_attempts:
                await self.timers.schedule(page_member(job_id, RESOLVE, attempt + 1),
                                           now + self.retry_delay(attempt))
                return WAITING
            if trigger != SENT:
                await self.marks.settle(job_id, RESOLVE, SKIPPED)
                return SKIPPED
        elif job.outputs.escalation_resolved_at is not None:
            await self.marks.settle(job_id, TRIGGER, SKIPPED)  # logins are back: no page
            return SKIPPED
        if attempt < self.max_attempts:  # the next attempt, should this one not get through
            await self.timers.schedule(page_member(job_id, action, attempt + 1),
                                       now + self.retry_delay(attempt))
        body = page_body(job, action, self.settings, now)
        self._inflight.add((job_id, action))
        task = asyncio.create_task(self._send(job_id, action, attempt, url, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return PAGING

    async def _send(
        self, job_id: str, action: str, attempt: int, url: str, body: dict[str, Any]
    ) -> None:
        try:
            result = await self._post(url, body)
            last = attempt >= self.max_attempts
            if result.ok:
                await self.marks.settle(job_id, action, SENT)
                log.info("escalation webhook sent", job_id=job_id, action=action,
                         attempt=attempt)
            elif not result.retry or last:
                await self.marks.settle(job_id, action, FAILED)
                log.error("escalation webhook failed for good", job_id=job_id, action=action,
                          attempt=attempt, reason=result.reason)
            else:
                log.warning("escalation webhook failed; retrying", job_id=job_id,
                            action=action, attempt=attempt, reason=result.reason,
                            retry_in=self.retry_delay(attempt))
            outcome = SENT if result.ok else FAILED if not result.retry or last else "retry"
            metrics.ESCALATION_WEBHOOKS.labels(action, outcome).inc()
        except Exception as exc:  # Redis gone while settling: the next attempt sorts it out
            log.warning("escalation webhook attempt broke", job_id=job_id, action=action,
                        error=type(exc).__name__)
        finally:
            self._inflight.discard((job_id, action))

    async def drain(self) -> None:
        """Wait for the POSTs in flight (tests; shutdown gives them a moment)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self, grace: float = 2.0) -> None:
        """Let POSTs in flight finish for up to `grace` seconds, then close the client."""
        if self._tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.drain(), grace)
        for task in list(self._tasks):
            task.cancel()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
