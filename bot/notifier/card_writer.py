"""What the notifier posts for one job event: the card (posted once, then edited), thread
replies, gate messages and their closing edits, each message posted at most once.

Every post goes through `CardWriter._once`: a `Keys.dedupe` marker is taken before the post
and the ts stored in `Keys.card(job)` right after, so a re-delivered event finds the ts and
does not post again (a crash in the middle of a post can at worst duplicate it after the
marker expires, never lose it). The card is rendered from the job record and an edit whose
content did not change is skipped (`digest`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from slack_sdk.web.async_client import AsyncWebClient

from bot.metrics import NOTIFIER_EVENTS
from bot.notifier.escalation import EscalationPoster
from bot.render.card import card
from bot.render.gates import gate_message
from bot.render.limits import Message
from bot.render.thread import ThreadPost, merged, thread_post
from bot.slack_api import Pacer
from jobs.config.log import get_logger
from jobs.rules.events import Event, EventKind
from jobs.rules.model import Job
from jobs.service import JobService
from jobs.store.keys import Keys

MARKER_SECONDS = 30  # a post taking longer than this may be repeated by another notifier
# Events that call for a thread reply (or nothing) and no other work: several waiting ones
# may be handled together, their plain one-line replies going out as one
# (`handle_merged`).
MERGEABLE_KINDS = frozenset(EventKind) - {
    EventKind.GATE_OPENED, EventKind.MANUAL, EventKind.ESCALATED, EventKind.ESCALATION_RESOLVED,
}

log = get_logger("bot.notifier.loop")


class Deferred(Exception):
    """Another notifier is posting this message (or died doing so): retry later."""


def digest(msg: Message) -> str:
    """A fingerprint of a message's content, to skip updates that change nothing."""
    raw = json.dumps(msg.kwargs(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()[:20]


class CardWriter:
    """Turns one job event into its Slack posts and edits, each message at most once."""

    def __init__(
        self,
        redis: aioredis.Redis,
        service: JobService,
        client: AsyncWebClient,
        keys: Keys,
        pacer: Pacer,
        consumer: str,
    ) -> None:
        self.redis = redis
        self.service = service
        self.client = client
        self.keys = keys
        self.pacer = pacer
        self.consumer = consumer  # names who holds a post marker
        # (job, created_at, name) -> card-hash fields of a message posted whose ts is not
        # stored yet.
        self._unstored: dict[tuple[str, float, str], dict[str, str]] = {}

    async def handle(self, ev: Event, loaded: dict[str, Job | None] | None = None) -> None:
        """Post what `ev` calls for (card first, so thread replies have a parent).

        `loaded`: the jobs already read for this batch. The job is read after its events
        were, so it shows at least what they announce; reading it once per batch rather
        than once per event took a fifth of the notifier's work away under load."""
        job = await self._load(ev.job_id, loaded)
        if job is None:
            return
        card_key, seen = self.keys.card(job.id), f"seq:{ev.seq}"
        # Exact seq, not "highest so far": with several notifiers a job's events may be
        # handled out of order, and a later one must not hide an earlier one.
        if ev.seq and await self.redis.hexists(card_key, seen):
            NOTIFIER_EVENTS.labels(ev.kind.value, "duplicate").inc()
            return
        card_ts = await self.ensure_card(job)
        post = thread_post(job, ev)
        # GATE_DECIDED needs its reply only: its message is closed with the card's edits
        # (`close_decided_gates`).
        if ev.kind in (EventKind.GATE_OPENED, EventKind.MANUAL):
            await self._post_gate(job, card_ts, str(ev.data.get("gate_id")), ev.data)
        elif ev.kind in (EventKind.ESCALATED, EventKind.ESCALATION_RESOLVED):
            await EscalationPoster(self, self.redis).handle(job, card_ts, ev)
        if post is not None:
            await self._once(job, f"ev:{ev.seq}", lambda: self._reply(job, card_ts, post))
        if ev.seq:
            await self._book(job, {seen: "1"})

    async def handle_merged(self, events: list[Event],
                            loaded: dict[str, Job | None] | None = None) -> None:
        """Handle several events of one job (`MERGEABLE_KINDS`, in order): consecutive
        plain one-line replies go out as one reply, any other reply on its own. Each
        reply's ts and the `seq` marks of the events it covers are written together, so a
        re-delivered event, whatever batch it comes in, finds itself done."""
        job = await self._load(events[0].job_id, loaded)
        if job is None:
            return
        card_key = self.keys.card(job.id)
        seen = await self.redis.hmget(card_key, [f"seq:{ev.seq}" for ev in events])
        fresh = [ev for ev, s in zip(events, seen, strict=True) if not (ev.seq and s)]
        for _ in range(len(events) - len(fresh)):
            NOTIFIER_EVENTS.labels("merged", "duplicate").inc()
        if not fresh:
            return
        card_ts = await self.ensure_card(job)
        covered: list[Event] = []  # events of the plain replies gathered (and silent ones)
        plain: list[tuple[Event, ThreadPost]] = []
        for ev in fresh:
            post = thread_post(job, ev)
            if post is not None and (post.line is None or post.broadcast):
                await self._merged_reply(job, card_ts, covered, plain)
                covered, plain = [], []
                await self._merged_reply(job, card_ts, [ev], [(ev, post)])
                continue
            covered.append(ev)
            if post is not None:
                plain.append((ev, post))
        await self._merged_reply(job, card_ts, covered, plain)

    async def _load(self, job_id: str, loaded: dict[str, Job | None] | None) -> Job | None:
        """The job, from `loaded` (the batch's jobs) or read and kept there; None (logged)
        when it is gone or has no channel to post in."""
        if loaded is not None and job_id in loaded:
            job = loaded[job_id]
        else:
            job = await self.service.find(job_id)
            if loaded is not None:
                loaded[job_id] = job
        if job is None or not job.channel:
            log.warning("notifier_no_job_or_channel", job_id=job_id)
            return None
        return job

    async def _merged_reply(self, job: Job, card_ts: str, covered: list[Event],
                            posts: list[tuple[Event, ThreadPost]]) -> None:
        """One reply for `posts` (merged when several), marking every `covered` event."""
        marks = {f"seq:{ev.seq}": "1" for ev in covered if ev.seq}
        if not posts:
            if marks:
                await self._book(job, marks)
            return
        post = posts[0][1] if len(posts) == 1 else merged([p for _, p in posts])
        await self._once(job, f"ev:{posts[0][0].seq}", lambda: self._reply(job, card_ts, post),
                         extra=marks)
        NOTIFIER_EVENTS.labels("merged", "ok").inc(len(covered))

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

    async def post_once(
        self,
        job: Job,
        name: str,
        post: Callable[[], Awaitable[str]],
        extra: dict[str, str] | None = None,
    ) -> str:
        """Post at most once per (job, `name`); the message ts (see `_once`)."""
        return await self._once(job, name, post, extra)

    async def reply(self, job: Job, card_ts: str, post: ThreadPost) -> str:
        """A reply in the card's thread (broadcast when `post` says so)."""
        return await self._reply(job, card_ts, post)

    async def _post(self, job: Job, msg: Message, *, urgent: bool = False, **extra: Any) -> str:
        resp = await self.pacer.call("chat.postMessage", self.client.chat_postMessage,
                                     urgent=urgent, channel=job.channel, **msg.kwargs(), **extra)
        return str(resp["ts"])

    async def _reply(self, job: Job, card_ts: str, post: ThreadPost, urgent: bool = False) -> str:
        return await self._post(job, post.message, urgent=urgent, thread_ts=card_ts,
                                reply_broadcast=post.broadcast)

    async def ensure_card(self, job: Job) -> str:
        """The card's ts, posting the card first if it has none yet."""
        if job.card_ts:
            return job.card_ts
        msg = card(job)
        # The digest of what was posted is stored with its ts (no Redis call between the
        # post and that write, see `_once`).
        # Urgent: the approval messages are replies in its thread, and wait for it.
        ts = await self._once(
            job, "card", lambda: self._post(job, msg, urgent=True),
            extra={"digest": digest(msg)}
        )
        await self.service.set_card(job.id, job.channel, ts, created_at=job.created_at)
        job.card_ts = ts
        return ts

    async def _event_seq(self, job_id: str) -> int:
        raw = await self.redis.hget(self.keys.job(job_id), "event_seq")
        return int(raw) if raw else 0

    async def refresh_ready_card(self, job_id: str) -> None:
        """Close the messages of gates decided since (`close_decided_gates`); then edit the
        card if the notifier has handled every event the job emitted (the `handled` seq,
        `bot.notifier.card_queue`), from the job as it is now; a job that moves meanwhile
        is left alone (its new event marks the card again)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hget(self.keys.job(job_id), "event_seq")
        pipe.hget(self.keys.card(job_id), "handled")
        before, handled = await pipe.execute()
        job = await self.service.find(job_id)
        if job is None:
            return
        await self.close_decided_gates(job)
        if int(before or 0) > int(handled or 0):
            return
        if not job.card_ts or await self._event_seq(job_id) != int(before or 0):
            return
        await self._edit_card(job)

    async def close_decided_gates(self, job: Job) -> None:
        """Show the decision on every decided gate's message not closed yet (`closed:<gate>`
        in the card hash). Here, with the card's edits, not in the job's chain of events:
        an edit waits for the workspace's one `chat.update` bucket, and the job's thread
        replies (under Slack's pace for posts) waited for it."""
        decided = [g for g in (job.gate(gid) for gid in job.gates)
                   if g is not None and g.decision is not None]
        if not decided:
            return
        closed = await self.redis.hmget(self.keys.card(job.id),
                                        [f"closed:{g.id}" for g in decided])
        for gate, done in zip(decided, closed, strict=True):
            if not done:
                await self.close_gate(job, gate.id)
                await self._book(job, {f"closed:{gate.id}": "1"})

    async def _edit_card(self, job: Job) -> None:
        msg = card(job)
        d = digest(msg)
        key = self.keys.card(job.id)
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
                              lambda: self._reply(job, card_ts, ThreadPost(msg, broadcast=True),
                                                  urgent=True))
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
        await self.pacer.call("chat.update", self.client.chat_update, urgent=True,
                              channel=job.channel, ts=str(ts), **msg.kwargs())
