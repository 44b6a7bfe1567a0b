"""Escalation posts: the call to on-call in PPS_ESCALATION_CHANNEL (default: the card's
channel, top level so the channel sees it), a note in the card's thread when that is
another channel, and the all-clear as a reply to the call when logins are back on.

Each message is posted at most once per job (`CardWriter.post_once`), like every other
post of the notifier. The PagerDuty webhook is the workers' (`jobs.worker.pager`), so a
webhook that is down never holds up the job's cards.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import redis.asyncio as aioredis

from bot.render.escalation import escalation_message, escalation_note, resolved_message
from bot.render.limits import Message
from bot.render.thread import ThreadPost
from jobs.rules.events import Event, EventKind
from jobs.rules.model import Job

if TYPE_CHECKING:
    from bot.notifier.card_writer import CardWriter

CALL, NOTE, RESOLVED = "escalation", "escalation-note", "escalation-resolved"


class EscalationPoster:
    """Posts what the ESCALATED and ESCALATION_RESOLVED events call for."""

    def __init__(self, writer: CardWriter, redis: aioredis.Redis) -> None:
        self.writer = writer
        self.redis = redis

    async def _post(self, channel: str, msg: Message, thread_ts: str | None = None) -> str:
        extra = {"thread_ts": thread_ts} if thread_ts else {}
        w = self.writer
        resp = await w.pacer.call("chat.postMessage", w.client.chat_postMessage, urgent=True,
                                  channel=channel, **msg.kwargs(), **extra)
        return str(resp["ts"])

    async def handle(self, job: Job, card_ts: str, ev: Event) -> None:
        channel = str(ev.data.get("channel") or job.channel)
        w = self.writer
        if ev.kind is EventKind.ESCALATED:
            await w.post_once(job, CALL, lambda: self._post(channel, escalation_message(
                job, ev.data)), extra={"escalation_channel": channel})
            if channel != job.channel:
                note = ThreadPost(escalation_note(job, channel))
                await w.post_once(job, NOTE, lambda: w.reply(job, card_ts, note))
        elif ev.kind is EventKind.ESCALATION_RESOLVED:
            key = w.keys.card(job.id)
            call_ts = await self.redis.hget(key, f"msg:{CALL}")
            where = await self.redis.hget(key, "escalation_channel") or channel
            msg = resolved_message(job, ev.data)
            await w.post_once(job, RESOLVED, lambda: self._post(str(where), msg,
                                                                str(call_ts or "") or None))
