"""The notifier: job events from the `events` stream become Slack posts and updates.

Delivery: at least once. Entries are read with XREADGROUP (group `notifier`) and
acknowledged only after their Slack work succeeded; a restarted notifier first re-reads
its own pending entries, and entries left by a dead consumer are taken over with
XAUTOCLAIM. Re-delivery is made harmless, not prevented:

- every message the notifier posts (the card, a thread reply, a gate message) goes
  through `_once`: a `Keys.dedupe` marker is taken before the post and the ts stored in
  `Keys.card(job)` right after, so a re-delivered event finds the ts and does not post
  again (a crash in the middle of a post can at worst duplicate it after the marker
  expires, never lose it);
- the card is posted once (its ts also stored with `JobService.set_card`) and then
  edited with chat.update; the card is rendered from the job record, so one update per
  job per batch shows the newest state (pending updates coalesce) and an update whose
  content did not change is skipped;
- the per-job event `seq` drops events already handled.

Several notifiers may consume the group (bot replicas): nothing is posted twice, but the
thread replies of one job may then interleave out of order.

Slack errors that may pass (429, 5xx, network) leave the job's entries pending and are
retried after a pause, never before a `Retry-After` elapsed (`Pacer`); errors Slack uses
for a call that can never succeed (`invalid_blocks`, `channel_not_found`, ...) are logged
and the event is acknowledged; any other error code is retried `UNKNOWN_ERROR_RETRIES`
times first, so one odd answer cannot leave a card showing a stale state.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.metrics import NOTIFIER_EVENTS
from bot.render_card import card
from bot.render_gates import gate_message
from bot.render_limits import Message
from bot.render_thread import ThreadPost, thread_post
from bot.slack_api import Pacer, is_permanent, is_transient
from jobs.clock import Clock
from jobs.events import Event, EventKind
from jobs.keys import NOTIFIER_GROUP, Keys
from jobs.log import get_logger
from jobs.model import Job
from jobs.redis_conn import BACKOFF_MAX, BLOCK_MS, REDIS_PROBE_MAX, backoff
from jobs.service import JobService

BATCH = 100
MARKER_SECONDS = 30  # a post taking longer than this may be repeated by another notifier
RECLAIM_EVERY_SECONDS = 15.0
RECLAIM_IDLE_MS = 60_000
# A Slack error that is neither known-transient nor known-permanent is retried this many
# times per job and kind of work before the notifier gives up on it (and logs it).
UNKNOWN_ERROR_RETRIES = 5

log = get_logger(__name__)
Entry = tuple[str, dict[str, str]]


class Deferred(Exception):
    """Another notifier is posting this message (or died doing so): retry later."""


def digest(msg: Message) -> str:
    """A fingerprint of a message's content, to skip updates that change nothing."""
    raw = json.dumps(msg.kwargs(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()[:20]


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
    ) -> None:
        self.redis = redis
        self.service = service
        self.client = client
        self.keys = keys
        self.clock = clock
        self.consumer = consumer
        self.block_ms = block_ms
        self.reclaim_idle_ms = reclaim_idle_ms
        self.pacer = pacer or Pacer(clock)
        self._stop = asyncio.Event()
        self._unknown_errors: dict[tuple[str, str], int] = {}
        # (job, created_at, name) -> card-hash fields of a message posted whose ts is not
        # stored yet.
        self._unstored: dict[tuple[str, float, str], dict[str, str]] = {}

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
        """Consume until `stop()`; Redis and Slack trouble pause the loop, never end it."""
        failures = 0
        redis_down, group_ok = False, False
        backlog, cursor = True, "0"
        next_reclaim = 0.0
        while not self._stop.is_set():
            try:
                if not group_ok:  # at start, and after Redis trouble (it may have lost it)
                    await self.ensure_group()
                    group_ok = True
                if self.clock.monotonic() >= next_reclaim:
                    next_reclaim = self.clock.monotonic() + RECLAIM_EVERY_SECONDS
                    if await self.reclaim():
                        backlog, cursor = True, "0"
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
        """Take over entries idle longer than `reclaim_idle_ms` (a dead consumer's)."""
        res = await self.redis.xautoclaim(
            self.keys.events, NOTIFIER_GROUP, self.consumer,
            min_idle_time=self.reclaim_idle_ms, start_id="0-0", count=BATCH,
        )
        return bool(res and res[1])

    async def process(self, entries: list[Entry]) -> bool:
        """Handle a batch in order; True when every entry was handled and acknowledged."""
        handled: list[tuple[str, str]] = []
        blocked: set[str] = set()
        dirty: dict[str, int] = {}  # job id -> highest event seq handled in this batch
        for eid, fields in entries:
            try:
                ev = Event.from_fields(fields)
            except (KeyError, ValueError) as exc:
                log.error("notifier_bad_event", entry=eid, error=repr(exc))
                await self.redis.xack(self.keys.events, NOTIFIER_GROUP, eid)
                continue
            if ev.job_id in blocked:
                continue  # keep this job's events in order: retry from the failed one
            if await self._attempt(ev.job_id, ev.kind.value, self.handle(ev)):
                handled.append((eid, ev.job_id))
                dirty[ev.job_id] = max(dirty.get(ev.job_id, 0), ev.seq)
            else:
                blocked.add(ev.job_id)
        last_id = entries[-1][0] if entries else "0-0"
        for job_id, seq in dirty.items():
            if job_id not in blocked and not await self._attempt(
                job_id, "card", self.refresh_card(job_id, upto=(seq, last_id))
            ):
                blocked.add(job_id)
        done = [eid for eid, job_id in handled if job_id not in blocked]
        if done:
            await self.redis.xack(self.keys.events, NOTIFIER_GROUP, *done)
        return not blocked

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

    # -- one event ---------------------------------------------------------------
    async def handle(self, ev: Event) -> None:
        """Post what `ev` calls for (card first, so thread replies have a parent)."""
        job = await self.service.find(ev.job_id)
        if job is None or not job.channel:
            log.warning("notifier_no_job_or_channel", job_id=ev.job_id)
            return
        card_key, seen = self.keys.card(job.id), f"seq:{ev.seq}"
        # Exact seq, not "highest so far": with several notifiers a job's events may be
        # handled out of order, and a later one must not hide an earlier one.
        if ev.seq and await self.redis.hexists(card_key, seen):
            NOTIFIER_EVENTS.labels(ev.kind.value, "duplicate").inc()
            return
        card_ts = await self.ensure_card(job)
        post = thread_post(job, ev)
        if ev.kind in (EventKind.GATE_OPENED, EventKind.MANUAL):
            await self._post_gate(job, card_ts, str(ev.data.get("gate_id")), ev.data)
        elif ev.kind is EventKind.GATE_DECIDED:
            await self.close_gate(job, str(ev.data.get("gate_id")))
        if post is not None:
            await self._once(job, f"ev:{ev.seq}", lambda: self._reply(job, card_ts, post))
        if ev.seq:
            await self._book(job, {seen: "1"})

    async def _book(self, job: Job, fields: dict[str, str]) -> None:
        """Write bookkeeping into the job's card hash, only while this very job exists: job
        ids start again after Redis lost its data, and a handler that was mid-way for the
        old J-0001 must not mark the new J-0001's events as done."""
        if not await self.service.store.set_fields_if_same(
            job.id, job.created_at, fields, key=self.keys.card(job.id)
        ):
            log.warning("notifier_job_replaced", job_id=job.id)

    async def _once(
        self,
        job: Job,
        name: str,
        post: Callable[[], Awaitable[str]],
        extra: dict[str, str] | None = None,
    ) -> str:
        """Post at most once per (job, name); returns the message ts. `extra` fields of the
        card hash are written together with the ts."""
        job_id = job.id
        card_key, field = self.keys.card(job_id), f"msg:{name}"
        memo = (job_id, job.created_at, name)
        stored = self._unstored.get(memo)
        if stored is None:
            ts = await self.redis.hget(card_key, field)
            if ts:
                return str(ts)
            marker = self.keys.dedupe(f"notify:{job_id}:{name}")
            if not await self.redis.set(marker, self.consumer, nx=True, ex=MARKER_SECONDS):
                raise Deferred(f"{job_id}:{name} is being posted")
            try:
                ts = await post()
            except BaseException:
                with contextlib.suppress(RedisError):  # Redis down too: the marker expires
                    await self.redis.delete(marker)
                raise
            # Posted. Until the ts is stored, keep it here: if Redis fails right now (a
            # restart), the retry stores it instead of posting again once the marker expired.
            stored = self._unstored[memo] = {field: str(ts), **(extra or {})}
        await self._book(job, stored)
        self._unstored.pop(memo, None)
        return stored[field]

    async def _post(self, job: Job, msg: Message, **extra: Any) -> str:
        resp = await self.pacer.call("chat.postMessage", self.client.chat_postMessage,
                                     channel=job.channel, **msg.kwargs(), **extra)
        return str(resp["ts"])

    async def _reply(self, job: Job, card_ts: str, post: ThreadPost) -> str:
        return await self._post(job, post.message, thread_ts=card_ts,
                                reply_broadcast=post.broadcast)

    async def ensure_card(self, job: Job) -> str:
        """The card's ts, posting the card first if it has none yet."""
        if job.card_ts:
            return job.card_ts
        msg = card(job)
        # The digest of what was posted is stored with its ts (no Redis call between the
        # post and that write, see `_once`).
        ts = await self._once(
            job, "card", lambda: self._post(job, msg), extra={"digest": digest(msg)}
        )
        await self.service.set_card(job.id, job.channel, ts, created_at=job.created_at)
        job.card_ts = ts
        return ts

    async def _event_seq(self, job_id: str) -> int:
        raw = await self.redis.hget(self.keys.job(job_id), "event_seq")
        return int(raw) if raw else 0

    async def refresh_card(self, job_id: str, upto: tuple[int, str] | None = None) -> None:
        """Edit the card to show the job's current state (skipped when unchanged).

        `upto` = (highest event seq handled, id of the batch's last entry): the card is
        rendered from the job as it is now, so while the job has later events not yet
        handled (an approval request, the summary), the edit waits for the batch that
        handles them; otherwise the card would show a state before the channel has what
        it announces. The event count is read before and after loading the job, so a
        commit in between is seen. A stream holding nothing newer than the batch (a
        trimmed event) does not hold the edit back.
        """
        before = await self._event_seq(job_id)
        job = await self.service.find(job_id)
        if job is None or not job.card_ts:
            return
        if upto is not None:
            seq, last_id = upto
            after = await self._event_seq(job_id)
            if after != before or after > seq:
                newest = await self.redis.xrevrange(self.keys.events, count=1)
                if after != before or (newest and newest[0][0] != last_id):
                    return
        msg = card(job)
        d = digest(msg)
        key = self.keys.card(job_id)
        if await self.redis.hget(key, "digest") == d:
            return
        await self.pacer.call("chat.update", self.client.chat_update, channel=job.channel,
                              ts=job.card_ts, **msg.kwargs())
        await self.redis.hset(key, "digest", d)

    async def _post_gate(self, job: Job, card_ts: str, gate_id: str, data: dict[str, Any]) -> None:
        """Post a gate's message (a broadcast thread reply) once and remember its ts."""
        gate = job.gate(gate_id)
        if gate is None:
            log.warning("notifier_unknown_gate", job_id=job.id, gate_id=gate_id)
            return
        if gate.message_ts:
            return
        await self._book(job, {f"gate_data:{gate_id}": json.dumps(data, default=str)})
        msg = gate_message(job, gate, data)
        ts = await self._once(job, f"gate:{gate_id}",
                              lambda: self._reply(job, card_ts, ThreadPost(msg, broadcast=True)))
        await self.service.set_gate_message(job.id, gate_id, ts, created_at=job.created_at)

    async def close_gate(self, job: Job, gate_id: str) -> None:
        """Show the decision on a gate's message: buttons gone, decider and time named."""
        gate = job.gate(gate_id)
        if gate is None or gate.decision is None:
            return
        key = self.keys.card(job.id)
        ts = gate.message_ts or await self.redis.hget(key, f"msg:gate:{gate_id}")
        if not ts:
            return
        raw = await self.redis.hget(key, f"gate_data:{gate_id}")
        msg = gate_message(job, gate, json.loads(raw) if raw else {})
        await self.pacer.call("chat.update", self.client.chat_update, channel=job.channel,
                              ts=str(ts), **msg.kwargs())
