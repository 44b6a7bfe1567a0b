"""Card edits, apart from the event path: a durable set of cards to refresh, and the loop
that refreshes them.

The notifier handles a batch of events (thread replies, gate messages) and then marks each
job's card as dirty instead of editing it in line. Every card edit is a `chat.update`, one
bucket for the whole workspace with one call in flight (`Pacer`), so editing 40 cards in
line held every batch, and with it the next gate message, behind 40 serial edits (gate
opened -> message visible p99 1.25 s with 40 upgrades at once) and behind any
`chat.update` 429. Now the gate message goes out with its batch and the cards follow.

- `cards_dirty` (zset, job id -> mark counter) is in Redis: a card marked before a crash
  is refreshed after the restart, by any bot replica. A card marked again while it is
  being edited keeps its new mark (removal compares the counter), so no state is lost.
- `handled` in the job's card hash is the highest event seq the notifier has handled (or
  given up on); a card is edited only when the job has no newer event, so the card never
  shows a state before the channel has what announces it. Those events mark it again.
- Marks coalesce: a job changed ten times while the loop was busy is edited once, with
  the newest state, and an edit that changes nothing is skipped (`digest`).
- A decided gate's message is closed (buttons gone, decider named) by the same loop, as
  soon as the job record shows the decision: in the job's chain that `chat.update` held
  the job's next thread replies for as long as the workspace's update bucket waited.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from slack_sdk.errors import SlackApiError

from bot.metrics import NOTIFIER_EVENTS
from bot.slack_api import is_permanent, is_transient
from jobs.config.log import get_logger
from jobs.store.keys import Keys
from jobs.store.redis_client import BACKOFF_MAX, backoff

PASS = 200  # cards looked at per pass
UNKNOWN_ERROR_RETRIES = 5  # an unknown Slack error code: tries before the edit is given up
IDLE_CHECK_SECONDS = 1.0  # look for marks of other replicas (or a restart) this often

# KEYS: 1 dirty zset, 2 its counter; ARGV: job ids. Each job gets a new, higher mark.
_MARK = r"""
for _, job in ipairs(ARGV) do
  redis.call('ZADD', KEYS[1], redis.call('INCR', KEYS[2]), job)
end
return #ARGV
"""
# KEYS: 1 dirty zset; ARGV: 1 job id, 2 the mark read. Removes only that very mark.
_DONE = r"""
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
"""
# KEYS: 1 card hash; ARGV: 1 seq. Raises `handled` to seq (never lowers it).
_HANDLED = r"""
local cur = tonumber(redis.call('HGET', KEYS[1], 'handled') or '0')
if tonumber(ARGV[1]) > cur then
  redis.call('HSET', KEYS[1], 'handled', ARGV[1])
end
return 1
"""

log = get_logger("bot.notifier.loop")
# Edits one job's card if it is ready (`CardWriter.refresh_ready_card`).
Refresh = Callable[[str], Awaitable[None]]


class CardQueue:
    """The durable set of cards waiting for an edit."""

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._mark = redis.register_script(_MARK)
        self._done = redis.register_script(_DONE)
        self._handled = redis.register_script(_HANDLED)
        self.wake = asyncio.Event()

    @property
    def key(self) -> str:
        return self.keys.prefix + "cards_dirty"

    async def handled(self, job_id: str, seq: int) -> None:
        """The notifier is done with the job's events up to `seq`."""
        if seq:
            await self._handled(keys=[self.keys.card(job_id)], args=[seq])

    async def mark(self, *job_ids: str) -> None:
        """These cards need an edit."""
        if job_ids:
            await self._mark(keys=[self.key, self.key + ":seq"], args=list(job_ids))
            self.wake.set()

    async def pending(self, limit: int = PASS) -> list[tuple[str, str]]:
        """(job id, mark) of the oldest marks first."""
        rows = cast(list[tuple[str, float]], await self.redis.zrange(
            self.key, 0, limit - 1, withscores=True))
        return [(job, str(int(score))) for job, score in rows]

    async def done(self, job_id: str, mark: str) -> None:
        await self._done(keys=[self.key], args=[job_id, mark])


class CardRefresher:
    """Edits the marked cards, oldest mark first, until stopped."""

    def __init__(self, queue: CardQueue, refresh: Refresh, stop: asyncio.Event) -> None:
        self.queue = queue
        self.refresh = refresh
        self.stop = stop
        self._unknown: dict[str, int] = {}

    async def run(self) -> None:
        failures = 0
        while not self.stop.is_set():
            try:
                busy = await self.one_pass()
                failures = 0
            except RedisError as exc:
                failures += 1
                log.warning("card_refresh_redis_error", error=repr(exc))
                await self._pause(backoff(failures, BACKOFF_MAX))
                continue
            if not busy:
                self.queue.wake.clear()
                await self._pause(IDLE_CHECK_SECONDS, wake=True)

    async def _pause(self, seconds: float, wake: bool = False) -> None:
        waits = [asyncio.ensure_future(self.stop.wait())]
        if wake:
            waits.append(asyncio.ensure_future(self.queue.wake.wait()))
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    async def one_pass(self) -> bool:
        """Edit what is marked now; True when something was looked at."""
        rows = await self.queue.pending()
        retry_later = False
        for job_id, mark in rows:
            if self.stop.is_set():
                return True
            try:
                await self.refresh(job_id)
            except RedisError:
                raise
            except Exception as exc:
                if self._retry(job_id, exc):  # the mark stays: try again shortly
                    NOTIFIER_EVENTS.labels("card", "retry").inc()
                    log.warning("card_refresh_retry", job_id=job_id, error=repr(exc))
                    retry_later = True
                else:
                    self._unknown.pop(job_id, None)
                    NOTIFIER_EVENTS.labels("card", "dropped").inc()
                    log.error("card_refresh_failed", job_id=job_id, error=repr(exc))
                    await self.queue.done(job_id, mark)
                continue
            self._unknown.pop(job_id, None)
            NOTIFIER_EVENTS.labels("card", "ok").inc()
            await self.queue.done(job_id, mark)
        if retry_later:
            await self._pause(1.0)
        return bool(rows)

    def _retry(self, job_id: str, exc: Exception) -> bool:
        """Worth another try: Slack or network trouble that passes, or a Slack error code
        not known to be permanent (a few times: the last edit must not be lost to one odd
        answer)."""
        if isinstance(exc, OSError | TimeoutError) or is_transient(exc):
            return True
        if not isinstance(exc, SlackApiError) or is_permanent(exc):
            return False
        self._unknown[job_id] = self._unknown.get(job_id, 0) + 1
        return self._unknown[job_id] <= UNKNOWN_ERROR_RETRIES

    async def drain(self, passes: int = 20) -> None:
        """Edit everything marked now (a notifier driven by hand, as in tests)."""
        for _ in range(passes):
            if not await self.one_pass() or not await self.queue.pending():
                return

