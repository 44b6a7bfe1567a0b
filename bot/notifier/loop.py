"""The notifier: job events from the `events` stream become Slack posts and updates.

Delivery: at least once. Entries are read with XREADGROUP (group `notifier`) and
acknowledged only after their Slack work succeeded; a restarted notifier first re-reads
its own pending entries, and entries left by a dead consumer are taken over with
XAUTOCLAIM. Re-delivery is made harmless, not prevented:

- every message the notifier posts (the card, a thread reply, a gate message) is posted
  by `bot.notifier.card_writer.CardWriter` at most once: a `Keys.dedupe` marker is taken before the
  post and the ts stored in `Keys.card(job)` right after, so a re-delivered event finds
  the ts and does not post again (a crash in the middle of a post can at worst duplicate
  it after the marker expires, never lose it);
- the card is posted once (its ts also stored with `JobService.set_card`) and then
  edited with chat.update, apart from the events (`bot.notifier.card_queue`): a batch marks
  its jobs' cards in a durable set and a loop edits them from the job record, so marks
  made meanwhile coalesce into one edit with the newest state, an edit whose content did
  not change is skipped, and no edit (nor its 429) holds up the next gate message;
- the per-job event `seq` drops events already handled.

Several notifiers may consume the group (bot replicas, several on one host too): each
process has a consumer name of its own (`unique_consumer`), so one never re-reads another's
pending entries as its own. Nothing is posted twice, but the thread replies of one job may
then interleave out of order. A consumer left by a stopped process is deleted once it has
nothing pending and has been idle for `PRUNE_IDLE_MS` (what it had pending is taken over
with XAUTOCLAIM first).

Jobs are handled side by side and never wait for each other: each job's events join that
job's chain and run after its earlier ones, while the loop reads on (`_dispatch`); an
approval message goes before the other events of its job's batch and before the posts
waiting in its channel's turn, and it does not wait for its job's earlier thread replies
either (`_ahead`: with a channel's posts paced to one a second, they held it for 12 s at
the median). Slack errors that may pass (429, 5xx, network) leave the
job's entries pending (its later events wait too) and, once every chain has finished, the
pending entries are re-read and retried after a pause; a 429 holds only its own bucket (a
channel's posts, or one method) until its `Retry-After` elapsed (`Pacer`), never the
other jobs and channels; errors Slack uses for a call that can never succeed
(`invalid_blocks`, `channel_not_found`, ...) are logged and the event is acknowledged; any
other error code is retried `UNKNOWN_ERROR_RETRIES` times first, so one odd answer cannot
leave a card showing a stale state.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Collection
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.metrics import NOTIFIER_EVENTS
from bot.notifier.card_queue import CardQueue, CardRefresher
from bot.notifier.card_writer import MERGEABLE_KINDS, CardWriter, Deferred
from bot.render.thread import MERGE_MAX
from bot.slack_api import Pacer, is_permanent, is_transient
from jobs.config.clock import Clock
from jobs.config.log import get_logger
from jobs.rules.events import Event, EventKind
from jobs.rules.model import Job
from jobs.service import JobService
from jobs.store.keys import NOTIFIER_GROUP, Keys
from jobs.store.redis_client import BACKOFF_MAX, BLOCK_MS, REDIS_PROBE_MAX, backoff

BATCH = 100
RECLAIM_EVERY_SECONDS = 15.0
RECLAIM_IDLE_MS = 60_000
PRUNE_IDLE_MS = 3_600_000  # a consumer idle this long with nothing pending is a dead one
PRUNE_EVERY_SECONDS = 3600.0
# A Slack error that is neither known-transient nor known-permanent is retried this many
# times per job and kind of work before the notifier gives up on it (and logs it).
UNKNOWN_ERROR_RETRIES = 5

MAX_CHAINS = 500  # jobs whose events are in hand at once; reading waits beyond that
# A job's plain thread replies that waited longer than this (Slack's pace, a backlog after an
# outage) go out as one reply: the thread, and the card that waits for it, catch up.
MERGE_LAG_SECONDS = 2.0
# An approval message whose job's chain has not taken it within this long (its earlier
# replies wait on Slack's pace) is posted ahead of them.
AHEAD_AFTER_SECONDS = 0.5


class _ChainFailed(Exception):
    """A job's chain left entries pending (Slack trouble): back off, then re-read them."""


# Events whose message a human acts on: handled before the others of their job's batch.
FIRST_KINDS = frozenset({EventKind.GATE_OPENED, EventKind.MANUAL})

log = get_logger(__name__)
Entry = tuple[str, dict[str, str]]
JobEntry = tuple[str, Event]  # an entry's id and its event


def unique_consumer(role: str = "bot") -> str:
    """A consumer name no other process shares: role, host, pid and a random suffix (two
    bots on one host, or two containers that both run as pid 1, differ)."""
    return f"{role}-{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class Notifier:
    """One consumer of the `events` stream; run several, each with its own `consumer`."""

    def __init__(
        self,
        redis: aioredis.Redis,
        service: JobService,
        client: AsyncWebClient,
        keys: Keys,
        clock: Clock,
        consumer: str,
        *,
        block_ms: int = BLOCK_MS,
        reclaim_idle_ms: int = RECLAIM_IDLE_MS,
        pacer: Pacer | None = None,
        on_change: Callable[[], None] | None = None,
        change_kinds: Collection[EventKind] = (),
    ) -> None:
        self.redis = redis
        # Told after a batch that handled an event of `change_kinds` (the App Home tab).
        self.on_change = on_change
        self.change_kinds = frozenset(change_kinds)
        self.keys = keys
        self.clock = clock
        self.consumer = consumer
        self.block_ms = block_ms
        self.reclaim_idle_ms = reclaim_idle_ms
        self.pacer = pacer or Pacer(clock)
        self._stop = asyncio.Event()
        self._unknown_errors: dict[tuple[str, str], int] = {}
        self._next_prune = clock.monotonic() + PRUNE_EVERY_SECONDS
        self.writer = CardWriter(redis, service, client, keys, self.pacer, consumer)
        self.cards = CardQueue(redis, keys)
        self.refresher = CardRefresher(self.cards, self.writer.refresh_ready_card, self._stop)
        self._chains: dict[str, asyncio.Task[bool]] = {}  # job -> its events in hand
        self._inbox: dict[str, list[JobEntry]] = {}  # job -> events its chain has yet to take
        self._ahead_of: dict[str, asyncio.Task[None]] = {}  # job -> approval posts ahead
        self._taken: dict[str, asyncio.Event] = {}  # job -> set once its chain took them
        self._failed = False
        self._failed_jobs: set[str] = set()  # jobs whose events wait for the re-read

    # -- the loop ------------------------------------------------------------------
    async def ensure_group(self) -> None:
        """Create the consumer group from the start of the stream (idempotent)."""
        try:
            await self.redis.xgroup_create(self.keys.events, NOTIFIER_GROUP, id="0",
                                           mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Consume until `stop()`; Redis and Slack trouble pause the loop, never end it.
        The card edits run beside it, until `stop()` too."""
        cards = asyncio.create_task(self.refresher.run(), name="card-refresher")
        try:
            await self._consume()
            await self._drain()  # the events in hand are finished, as a batch was before
        finally:
            self._stop.set()
            for chain in [*self._chains.values(), *self._ahead_of.values()]:
                chain.cancel()  # cancelled (a bounded shutdown): their entries stay pending
            with contextlib.suppress(asyncio.CancelledError):
                await cards

    async def refresh_cards(self) -> None:
        """Edit every card marked now (for a notifier driven by hand with `process`)."""
        await self.refresher.drain()

    async def _consume(self) -> None:
        failures = 0
        redis_down, group_ok = False, False
        backlog, cursor = True, "0"
        next_reclaim = 0.0
        while not self._stop.is_set():
            try:
                if not group_ok:  # at start, and after Redis trouble (it may have lost it)
                    await self.ensure_group()
                    group_ok = True
                if self._failed:  # a job's chain left entries pending: re-read them
                    await self._drain()
                    self._failed = False
                    self._failed_jobs.clear()
                    raise _ChainFailed
                if self.clock.monotonic() >= next_reclaim:
                    next_reclaim = self.clock.monotonic() + RECLAIM_EVERY_SECONDS
                    if await self.reclaim():
                        backlog, cursor = True, "0"
                if backlog:  # pending entries are re-read: none may be in flight meanwhile
                    await self._drain()
                entries = await self._read(cursor if backlog else ">")
                if redis_down:
                    redis_down, failures = False, 0  # the next outage backs off from the start
                    log.info("notifier_redis_back")
                if backlog and not entries:
                    backlog, cursor = False, "0"
                    continue
                if not entries:
                    continue
                if backlog:
                    cursor = entries[-1][0]
                    if await self.process(entries):
                        failures = 0
                        continue
                else:
                    await self._dispatch(entries)
                    failures = 0
                    continue
            except _ChainFailed:
                pass
            except RedisError as exc:
                if not redis_down:
                    redis_down = True
                    log.warning("notifier_redis_error", error=repr(exc))
                group_ok = False
            failures += 1
            backlog, cursor = True, "0"
            # Redis down: probe often so cards resume soon after it returns; Slack trouble
            # (a failed post) backs off further.
            await self._pause(backoff(failures, REDIS_PROBE_MAX if redis_down else BACKOFF_MAX))

    async def _dispatch(self, entries: list[Entry]) -> None:
        """New entries: each job's events join that job's chain (after the events of it
        still in hand), and the loop reads on. Jobs do not wait for each other: with Slack
        pacing a channel's posts, a batch barrier held every job's approval message until
        the slowest channel of the batch was done (p50 18.5 s with the stand-in's limits
        on). A chain that fails leaves its entries pending; the loop then lets every chain
        finish and re-reads what is pending, as before."""
        by_job = await self._group(entries)
        for job_id, evs in by_job.items():
            chain = self._chains.get(job_id)
            if chain is not None and not chain.done():
                # Its earlier events are still in hand: these wait in its inbox (and are
                # taken with the others waiting there), an approval message goes now.
                self._inbox.setdefault(job_id, []).extend(evs)
                first = [ev for _, ev in evs if ev.kind in FIRST_KINDS]
                if first:
                    taken = self._taken.setdefault(job_id, asyncio.Event())
                    prev = self._ahead_of.get(job_id)
                    self._ahead_of[job_id] = asyncio.create_task(
                        self._ahead(prev, job_id, first, taken))
                continue
            self._inbox[job_id] = list(evs)
            task = asyncio.create_task(self._chain(job_id))
            self._chains[job_id] = task
            task.add_done_callback(functools.partial(self._chain_done, job_id))
        while len(self._chains) > MAX_CHAINS:  # bounded: wait for some to finish
            await asyncio.wait(set(self._chains.values()), return_when=asyncio.FIRST_COMPLETED)

    async def _ahead(self, prev: asyncio.Task[None] | None, job_id: str,
                     events: list[Event], taken: asyncio.Event) -> None:
        """Post an approval message while the job's earlier events are still in hand (their
        thread replies waiting on the channel's pace): a human acts on it, the replies only
        tell. Only when the job's chain has not taken it within `AHEAD_AFTER_SECONDS` (it
        is behind; otherwise the chain posts it first, and the card shows the gate before
        anyone can click), and once the card is posted (the message is a reply in its
        thread). Its event stays in the job's inbox: handled there in order, it is then
        found done (its `seq` mark), or tried again if this attempt failed."""
        if prev is not None:
            await asyncio.shield(prev)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(taken.wait(), AHEAD_AFTER_SECONDS)
        if taken.is_set():
            return  # the chain has it
        try:
            job = await self.writer.service.find(job_id)
            if job is None or not job.card_ts:
                return
            for ev in events:
                await self.writer.handle(ev, {job_id: job})
                NOTIFIER_EVENTS.labels(ev.kind.value, "ahead").inc()
        except Exception as exc:  # the chain handles it in order, retries included
            log.info("notifier_ahead_failed", job_id=job_id, error=repr(exc))

    async def _chain(self, job_id: str) -> bool:
        """The job's events, in order, as they reach its inbox: each round takes all of
        them that wait there (several plain replies that fell behind go out as one). False
        (entries left pending) when they could not be handled: a later event must not be
        handled past an earlier one that failed (the card would show a state before its
        message), so the rest of the inbox is left for the re-read too."""
        ok = True
        while True:
            events = self._inbox.pop(job_id, [])
            if not events or not ok or job_id in self._failed_jobs:
                if events or not ok:
                    self._failed_jobs.add(job_id)  # its events wait for the re-read
                    self._failed = True
                if self._chains.get(job_id) is asyncio.current_task():
                    del self._chains[job_id]  # no await since the inbox was found empty
                return ok and not events
            taken = self._taken.pop(job_id, None)
            if taken is not None:
                taken.set()  # an approval message waiting to go ahead: the chain has it
            ahead = self._ahead_of.get(job_id)
            if ahead is not None:  # never two posts of one message at once (its marker)
                await asyncio.shield(ahead)
                if self._ahead_of.get(job_id) is ahead:
                    del self._ahead_of[job_id]
            try:
                ids, ok = await self._process_job(job_id, events)
                if ids:
                    await self.redis.xack(self.keys.events, NOTIFIER_GROUP, *ids)
                    if self.on_change is not None and any(
                            ev.kind in self.change_kinds for _, ev in events):
                        self.on_change()
            except RedisError as exc:
                log.warning("notifier_redis_error", error=repr(exc))
                ok = False

    def _chain_done(self, job_id: str, task: asyncio.Task[bool]) -> None:
        if self._chains.get(job_id) is task:  # cancelled, or ended by an error
            del self._chains[job_id]
            self._inbox.pop(job_id, None)  # left pending: re-read

    async def _drain(self) -> None:
        """Let every job's chain finish (before pending entries are re-read, or on stop)."""
        while self._chains:
            await asyncio.wait(set(self._chains.values()))
        if self._ahead_of:
            await asyncio.wait(set(self._ahead_of.values()))
            self._ahead_of.clear()
        self._taken.clear()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def _read(self, cursor: str) -> list[Entry]:
        """Our pending entries from `cursor`, or new ones (`>`, blocking until stop)."""
        read = asyncio.ensure_future(self.redis.xreadgroup(
            NOTIFIER_GROUP, self.consumer, {self.keys.events: cursor}, count=BATCH,
            block=None if cursor != ">" else self.block_ms,
        ))
        stopping = asyncio.ensure_future(self._stop.wait())
        await asyncio.wait({read, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not read.done():
            # Stopping during a blocking read: entries delivered meanwhile stay pending
            # in our PEL and are re-read on the next start.
            read.cancel()
            with contextlib.suppress(asyncio.CancelledError, RedisError):
                await read
            return []
        # RESP2 shape (make_redis): [[stream, [(id, fields), ...]]]
        res = cast(list[tuple[str, list[Entry]]], read.result())
        return res[0][1] if res else []

    async def reclaim(self) -> bool:
        """Take over entries idle longer than `reclaim_idle_ms` (a dead consumer's); once an
        hour, `prune` too."""
        res = await self.redis.xautoclaim(
            self.keys.events, NOTIFIER_GROUP, self.consumer,
            min_idle_time=self.reclaim_idle_ms, start_id="0-0", count=BATCH,
        )
        if self.clock.monotonic() >= self._next_prune:
            self._next_prune = self.clock.monotonic() + PRUNE_EVERY_SECONDS
            await self.prune()
        return bool(res and res[1])

    async def prune(self) -> None:
        """Delete the consumers of stopped processes: idle for `PRUNE_IDLE_MS`, nothing
        pending (what they had was claimed by then)."""
        consumers: list[dict[str, Any]] = await self.redis.xinfo_consumers(
            self.keys.events, NOTIFIER_GROUP)
        for c in consumers:
            name = str(c.get("name"))
            if (name != self.consumer and int(c.get("pending", 1)) == 0
                    and int(c.get("idle", 0)) > PRUNE_IDLE_MS):
                await self.redis.xgroup_delconsumer(self.keys.events, NOTIFIER_GROUP, name)

    async def process(self, entries: list[Entry]) -> bool:
        """Handle a batch: each job's events in order, the jobs side by side (a job whose
        Slack calls wait on a rate limit holds up no other job); True when every entry was
        handled and acknowledged."""
        by_job = await self._group(entries)
        results = await asyncio.gather(
            *(self._process_job(job_id, evs) for job_id, evs in by_job.items())
        )
        done = [eid for ids, _ in results for eid in ids]
        if done:
            await self.redis.xack(self.keys.events, NOTIFIER_GROUP, *done)
        acked = set(done)
        if self.on_change is not None and any(
            ev.kind in self.change_kinds for evs in by_job.values() for eid, ev in evs
            if eid in acked
        ):
            self.on_change()
        return all(ok for _, ok in results)

    async def _group(self, entries: list[Entry]) -> dict[str, list[JobEntry]]:
        """Entries by job, in order; a malformed entry is logged and acknowledged."""
        by_job: dict[str, list[JobEntry]] = {}
        for eid, fields in entries:
            try:
                ev = Event.from_fields(fields)
            except (KeyError, ValueError) as exc:
                log.error("notifier_bad_event", entry=eid, error=repr(exc))
                await self.redis.xack(self.keys.events, NOTIFIER_GROUP, eid)
                continue
            by_job.setdefault(ev.job_id, []).append((eid, ev))
        return by_job

    async def _process_job(
        self, job_id: str, events: list[JobEntry]
    ) -> tuple[list[str], bool]:
        """One job's events of a batch, in order, then its card marked for an edit: the
        entry ids to acknowledge (none when it must be retried from the failed event) and
        success."""
        handled: list[str] = []
        seq = 0  # the highest event seq handled in this batch
        if any(ev.kind is EventKind.GATE_DECIDED for _, ev in events):
            await self.cards.mark(job_id)  # its message is closed with the card's edits
        loaded: dict[str, Job | None] = {}  # the job, read once for the batch
        # An approval message first: the job waits on it, while the thread replies of the
        # same batch only tell; with a channel's posts paced, it then waits for none of them.
        events = sorted(events, key=lambda e: e[1].kind not in FIRST_KINDS)
        i = 0
        while i < len(events):
            group = events[i:i + 1]
            # Asked again for each reply: the round's own posts, paced, make the rest wait.
            behind = self._behind(events[i:])
            while (behind and len(group) < MERGE_MAX and i + len(group) < len(events)
                   and {group[0][1].kind, events[i + len(group)][1].kind} <= MERGEABLE_KINDS):
                group.append(events[i + len(group)])
            ev = group[0][1]
            work, what = ((self.writer.handle_merged([e for _, e in group], loaded), "merged")
                          if len(group) > 1 else (self.writer.handle(ev, loaded), ev.kind.value))
            if not await self._attempt(job_id, what, work):
                return [], False  # keep this job's events in order: retry from here
            handled.extend(eid for eid, _ in group)
            seq = max(seq, *(e.seq for _, e in group))
            i += len(group)
        if handled and not await self._attempt(job_id, "card", self._mark_card(job_id, seq)):
            return [], False
        return handled, True

    def _behind(self, events: list[JobEntry]) -> bool:
        """Have the job's thread replies fallen behind (the oldest event in hand waited
        longer than `MERGE_LAG_SECONDS`)? Then its plain replies go out merged, so the
        thread, and the card that waits for it, catch up."""
        oldest = min((ev.at for _, ev in events if ev.at), default=None)
        return oldest is not None and self.clock.now() - oldest > MERGE_LAG_SECONDS

    async def _mark_card(self, job_id: str, seq: int) -> None:
        await self.cards.handled(job_id, seq)
        await self.cards.mark(job_id)

    async def _attempt(self, job_id: str, what: str, work: Awaitable[None]) -> bool:
        """Run `work`; False when it should be retried later (the entry stays pending)."""
        try:
            await work
        except (Deferred, RedisError) as exc:
            NOTIFIER_EVENTS.labels(what, "retry").inc()
            log.info("notifier_retry_later", job_id=job_id, what=what, error=repr(exc))
            return False
        except Exception as exc:
            if is_transient(exc) or self._retry_unknown(job_id, what, exc):
                NOTIFIER_EVENTS.labels(what, "retry").inc()
                log.warning("notifier_slack_retry", job_id=job_id, what=what, error=repr(exc))
                return False
            self._unknown_errors.pop((job_id, what), None)
            NOTIFIER_EVENTS.labels(what, "dropped").inc()
            log.error("notifier_slack_failed", job_id=job_id, what=what, error=repr(exc))
            return True
        self._unknown_errors.pop((job_id, what), None)
        NOTIFIER_EVENTS.labels(what, "ok").inc()
        return True

    def _retry_unknown(self, job_id: str, what: str, exc: Exception) -> bool:
        """Retry a Slack error we do not know to be permanent, a few times (the last card
        update must not be lost to one odd answer)."""
        if not isinstance(exc, SlackApiError) or is_permanent(exc):
            return False
        n = self._unknown_errors.get((job_id, what), 0) + 1
        self._unknown_errors[(job_id, what)] = n
        return n <= UNKNOWN_ERROR_RETRIES
