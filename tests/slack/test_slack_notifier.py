"""The notifier's delivery guarantees: at least once, never duplicated, paced by Retry-After,
pending updates coalesced, resumed after a restart or taken over from a dead consumer."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from typing import Any

from bot.notifier.loop import Notifier
from jobs.config.clock import SystemClock
from jobs.rules.events import EventKind
from jobs.rules.model import State, Step
from jobs.store.keys import NOTIFIER_GROUP
from sim.slack.store import RateLimit
from tests.fakes.clock import FakeClock
from tests.slack.slack_stack import StackFactory

REQ, A1, A2 = "U_REQUESTER", "U_APPROVER1", "U_APPROVER2"




async def hand_driven(stack: StackFactory) -> tuple[Any, Notifier, str]:
    """A stack without its notifier, one driven by hand (`process`), and a job started."""
    st = await stack(notifier=False)
    n = Notifier(st.redis, st.service, st.runtime.client, st.keys, SystemClock(), "n1")
    await n.ensure_group()
    return st, n, await st.start_job()


async def run_happy_path(st: Any, jid: str) -> Any:
    await st.click(A1, await st.open_gate(jid, Step.GATE_DISABLE), "pps_approve")
    await st.click(A2, await st.open_gate(jid, Step.GATE_ENABLE), "pps_approve")
    return await st.card_in(jid, "succeeded", summary="upgraded to")


def thread_counts(st: Any, card: Any) -> Counter[str]:
    return Counter(m.text for m in st.thread(card))


async def events_of(st: Any, jid: str) -> list[Any]:
    return [e for e in await st.service.store.events() if e.job_id == jid]


async def test_slack_rate_limit_no_call_before_retry_after(stack: StackFactory) -> None:
    limit = RateLimit(limit=1, window=1.0, methods=frozenset({"chat.update"}))
    st = await stack(worker=True, rate_limit=limit)
    jid = await st.start_job()
    card = await run_happy_path(st, jid)
    calls = st.store.calls
    assert any(c.status == 429 for c in calls), "the stand-in did rate-limit"
    early = [c.public() for c in calls if c.early]
    assert early == [], "a call came before its Retry-After had elapsed"
    # pending card updates coalesce: fewer edits than events that changed the card
    updates = [c for c in st.calls_on("chat.update", card.ts) if c.ok]
    assert 0 < len(updates) < len(await events_of(st, jid))
    assert updates[-1].args["metadata"]["event_payload"]["state"] == "succeeded"
    assert max(thread_counts(st, card).values()) == 1


async def test_slack_errors_are_retried_without_loss_or_duplicates(stack: StackFactory) -> None:
    st = await stack(worker=True)
    st.store.inject("chat.postMessage", "http_500")
    st.store.inject("chat.postMessage", "internal_error")
    st.store.inject("chat.postMessage", "ratelimited", retry_after=1)
    st.store.inject("chat.update", "service_unavailable")
    jid = await st.start_job()
    card = await run_happy_path(st, jid)
    assert len(st.cards(jid)) == 1
    counts = thread_counts(st, card)
    assert max(counts.values()) == 1, [t for t, n in counts.items() if n > 1]
    done = [e for e in await events_of(st, jid) if e.kind is EventKind.STEP_DONE]
    # (Replies that fell 2 s behind during the retries go out merged: lines, not messages.)
    lines = [ln for m in st.thread(card) for ln in m.text.splitlines() if ": done" in ln]
    assert len(lines) == len(done) == len(set(lines)), "every step's reply arrived, once"
    assert any(c.error == "internal_error" for c in st.store.calls)


async def test_slack_redelivered_event_updates_instead_of_posting(stack: StackFactory) -> None:
    st, n, jid = await hand_driven(stack)
    entries = await st.redis.xrange(st.keys.events)
    assert await n.process(entries)
    (card,) = st.cards(jid)
    job = await st.job(jid)
    assert job.card_ts == card.ts and job.channel == card.channel
    # the same entries again (a re-delivery): nothing new is posted
    assert await n.process(entries)
    await st.ack_text(f"abort {jid}")
    entries = await st.redis.xrange(st.keys.events)
    assert await n.process(entries)
    assert await n.process(entries)
    await n.refresh_cards()  # card edits run apart from the events
    posts = [c for c in st.store.calls_of("chat.postMessage") if c.ok]
    assert len([c for c in posts if not c.args.get("thread_ts")]) == 1
    assert max(thread_counts(st, card).values()) == 1
    assert st.cards(jid)[0].metadata["event_payload"]["state"] == "cancelled"


async def test_slack_post_in_progress_elsewhere_is_retried_later(stack: StackFactory) -> None:
    st, n, jid = await hand_driven(stack)
    marker = st.keys.dedupe(f"notify:{jid}:card")
    await st.redis.set(marker, "another-notifier", ex=30)
    entries = await n._read(">")
    assert not await n.process(entries), "deferred while another notifier posts the card"
    assert st.cards(jid) == []
    pending = await st.redis.xpending(st.keys.events, NOTIFIER_GROUP)
    assert pending["pending"] == len(entries)
    await st.redis.delete(marker)  # the other one died: its marker expired
    assert await n.process(await n._read("0"))
    assert len(st.cards(jid)) == 1
    assert (await st.redis.xpending(st.keys.events, NOTIFIER_GROUP))["pending"] == 0


async def test_slack_restarted_notifier_resumes_and_dead_one_is_taken_over(
    stack: StackFactory,
) -> None:
    st = await stack(notifier=False)
    clock = SystemClock()
    first = Notifier(st.redis, st.service, st.runtime.client, st.keys, clock, "bot-a")
    await first.ensure_group()
    jid = await st.start_job()
    # bot-a reads the entries and dies before handling them (they stay in its PEL)
    read = await first._read(">")
    assert read and st.cards(jid) == []
    # bot-a restarted under the same name resumes from its own pending entries
    again = Notifier(st.redis, st.service, st.runtime.client, st.keys, clock, "bot-a")
    task = asyncio.create_task(again.run())
    await st.wait_for(lambda: _cards(st, jid), what="card after restart")
    again.stop()
    await asyncio.wait_for(task, 5)
    # now bot-a dies holding the abort's events; bot-b takes them over with XAUTOCLAIM
    await st.ack_text(f"abort {jid}")
    assert await Notifier(st.redis, st.service, st.runtime.client, st.keys, clock,
                          "bot-a")._read(">")
    other = Notifier(st.redis, st.service, st.runtime.client, st.keys, clock, "bot-b",
                     reclaim_idle_ms=0)
    task = asyncio.create_task(other.run())
    await st.card_in(jid, "cancelled")  # shown by bot-b
    other.stop()
    await asyncio.wait_for(task, 5)
    assert (await st.redis.xpending(st.keys.events, NOTIFIER_GROUP))["pending"] == 0
    assert len(st.cards(jid)) == 1
    assert max(thread_counts(st, st.cards(jid)[0]).values()) == 1
    assert (await st.job(jid)).state is State.CANCELLED


async def _cards(st: Any, jid: str) -> bool:
    return bool(st.cards(jid))


async def test_slack_card_metadata_and_text_fallback_on_every_call(stack: StackFactory) -> None:
    st = await stack(worker=True)
    jid = await st.start_job("upgrade cluster-east")
    card = await run_happy_path(st, jid)
    for c in st.store.calls:
        if c.method in ("chat.postMessage", "chat.update", "chat.postEphemeral"):
            assert c.args.get("text"), f"{c.method} without fallback text"
    card_calls = [c for c in st.store.calls if c.ok and (
        (c.method == "chat.update" and c.args.get("ts") == card.ts)
        or (c.method == "chat.postMessage" and not c.args.get("thread_ts")))]
    assert card_calls and all(
        c.args["metadata"]["event_payload"]["job_id"] == jid for c in card_calls)
    states = [c.args["metadata"]["event_payload"]["state"] for c in card_calls]
    assert states[-1] == "succeeded" and "awaiting_approval" in states
    assert json.dumps(card.blocks, ensure_ascii=False).count("✅") >= 12  # 11 steps + header


async def test_slack_notifier_waits_out_a_redis_outage(stack: StackFactory) -> None:
    from redis.asyncio import Redis

    st = await stack(notifier=False)
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    calls = 0
    original = dead.xgroup_create

    async def counting(*args: Any, **kw: Any) -> Any:
        nonlocal calls
        calls += 1
        return await original(*args, **kw)

    dead.xgroup_create = counting  # type: ignore[method-assign]
    n = Notifier(dead, st.service, st.runtime.client, st.keys, SystemClock(), "n-dead")
    task = asyncio.create_task(n.run())
    await asyncio.sleep(1.5)
    assert not task.done(), "a Redis outage must not end the notifier"
    assert 2 <= calls <= 5, f"{calls} attempts in 1.5 s: backs off, does not spin"
    n.stop()
    await asyncio.wait_for(task, 5)
    await dead.aclose()


async def test_slack_gate_message_is_not_held_behind_rate_limited_card_edits(
    stack: StackFactory,
) -> None:
    # The first card edit meets a 429 with Retry-After 3 s and waits it out. The gate
    # message (a post in the channel) must not wait with it.
    st = await stack(worker=True)
    st.store.inject("chat.update", "ratelimited", retry_after=3)
    jid = await st.start_job()
    await st.open_gate(jid, Step.GATE_DISABLE)
    opened = next(e for e in await events_of(st, jid) if e.kind is EventKind.GATE_OPENED)
    posted = next(c for c in st.store.calls_of("chat.postMessage")
                  if c.ok and c.args.get("reply_broadcast") and "pps_approve" in json.dumps(
                      c.args.get("blocks")))
    limited = [c for c in st.store.calls_of("chat.update") if c.status == 429]
    if limited and limited[0].at < posted.at:  # (before: posted 3.0 s after the 429)
        assert posted.at < limited[0].at + 3, "posted while the card edit waited"
    assert posted.at - opened.at < 1.0, "the gate message waited for a card edit"
    # The card still ends up showing the end, and no call came before its Retry-After.
    card = await run_happy_path(st, jid)
    assert card.metadata["event_payload"]["state"] == "succeeded"
    assert any(c.status == 429 for c in st.store.calls_of("chat.update")), "the 429 came"
    assert [c.public() for c in st.store.calls if c.early] == []


async def test_slack_card_marked_during_its_edit_is_edited_again(stack: StackFactory) -> None:
    st, n, jid = await hand_driven(stack)
    assert await n.process(await st.redis.xrange(st.keys.events))
    ((_, mark),) = await n.cards.pending()
    await n.cards.mark(jid)  # a new event while the first edit is under way
    await n.cards.done(jid, mark)  # the first edit ends: the new mark stays
    assert [j for j, _ in await n.cards.pending()] == [jid]
    # Marks are in Redis: another notifier (a restart) edits what this one left.
    other = Notifier(st.redis, st.service, st.runtime.client, st.keys, SystemClock(), "n2")
    await st.ack_text(f"abort {jid}")
    assert await other.process(await st.redis.xrange(st.keys.events))
    await other.refresh_cards()
    assert await other.cards.pending() == []
    assert st.cards(jid)[0].metadata["event_payload"]["state"] == "cancelled"


async def test_slack_card_waits_for_the_events_it_would_show(stack: StackFactory) -> None:
    st, n, jid = await hand_driven(stack)
    assert await n.process(await st.redis.xrange(st.keys.events))
    await n.refresh_cards()
    await st.ack_text(f"abort {jid}")  # a new event, not handled yet
    await n.cards.mark(jid)
    await n.refresh_cards()
    assert st.cards(jid)[0].metadata["event_payload"]["state"] != "cancelled"
    assert await n.cards.pending() == []  # dropped: handling the event marks it again
    assert await n.process(await n._read(">"))
    assert await n.cards.pending() != []
    await n.refresh_cards()
    assert st.cards(jid)[0].metadata["event_payload"]["state"] == "cancelled"


async def test_slack_gate_message_does_not_wait_for_its_jobs_earlier_replies(
    stack: StackFactory,
) -> None:
    # One post a second per channel: the thread replies of preflight, backups and builds
    # are still queued on the channel's pace when the disable gate opens. Its approval
    # message goes out before them (it waited for all of them before: about 7 s here).
    limit = RateLimit(limit=1, window=1.0, methods=frozenset({"chat.postMessage"}))
    st = await stack(worker=True, rate_limit=limit)
    jid = await st.start_job()
    await st.open_gate(jid, Step.GATE_DISABLE)
    events = await events_of(st, jid)
    opened = next(e for e in events if e.kind is EventKind.GATE_OPENED)
    posted = next(c for c in st.store.calls_of("chat.postMessage")
                  if c.ok and "pps_approve" in json.dumps(c.args.get("blocks")))
    earlier = [e for e in events if e.seq < opened.seq and e.kind is EventKind.STEP_DONE]
    replied = [c for c in st.store.calls_of("chat.postMessage")
               if c.ok and c.args.get("thread_ts") and c.at < posted.at]
    assert len(replied) < len(earlier), "the gate message waited for every earlier reply"
    assert posted.at - opened.at < 2.5
    # Nothing is lost or doubled: every step's reply arrives once, the card ends right.
    card = await run_happy_path(st, jid)
    counts = thread_counts(st, card)
    assert max(counts.values()) == 1, [t for t, n in counts.items() if n > 1]
    done = [e for e in await events_of(st, jid) if e.kind is EventKind.STEP_DONE]
    lines = [ln for m in st.thread(card) for ln in m.text.splitlines() if ": done" in ln]
    assert len(lines) == len(done) == len(set(lines))  # merged ones too: each line once
    gate_posts = [c for c in st.store.calls_of("chat.postMessage")
                  if c.ok and "pps_approve" in json.dumps(c.args.get("blocks"))]
    assert len(gate_posts) == 2, "each gate's message once"
    assert [c.public() for c in st.store.calls if c.early] == []


async def test_slack_replies_that_fell_behind_go_out_merged_once_each(
    stack: StackFactory,
) -> None:
    # The worker runs up to the disable gate with no notifier; a notifier whose clock is a
    # minute later then finds every event waited long (a backlog): the plain replies go out
    # as few messages, each step's line once, the approval message on its own.
    st = await stack(worker=True, notifier=False)
    jid = await st.start_job()
    await st.until_state(jid, State.AWAITING_APPROVAL)
    clock = FakeClock(start=time.time() + 60)
    n = Notifier(st.redis, st.service, st.runtime.client, st.keys, clock, "n1")
    await n.ensure_group()
    entries = await n._read(">")
    assert await n.process(entries)
    assert await n.process(entries)  # re-delivered: nothing posted again
    (card,) = st.cards(jid)
    done = [e for e in await events_of(st, jid) if e.kind is EventKind.STEP_DONE]
    assert len(done) >= 3
    replies = [m for m in st.thread(card) if ": done" in m.text]

    def shown(m: Any) -> list[str]:  # the lines a reader sees (its sections)
        return "\n".join(b["text"]["text"] for b in m.blocks).splitlines()

    lines = [ln for m in replies for ln in shown(m) if ": done" in ln]
    assert len(lines) == len(done) and len(set(lines)) == len(lines), lines
    assert len(replies) < len(done), "the replies that fell behind were merged"
    for m in replies:  # its fallback text carries every line too
        assert m.text.splitlines() == shown(m)
    assert len(st.gate_messages(jid)) == 1
    assert (await st.redis.xpending(st.keys.events, NOTIFIER_GROUP))["pending"] == 0
    # Once caught up, a new event is a reply of its own again.
    clock = FakeClock(start=time.time())
    n.clock = clock
    await st.click(A1, st.gate_messages(jid)[0], "pps_approve")
    assert await n.process(await n._read(">"))
    assert any("approved" in m.text and ": done" not in m.text for m in st.thread(card))


async def test_slack_gate_close_does_not_hold_the_jobs_thread_replies(
    stack: StackFactory,
) -> None:
    # The workspace's chat.update bucket is held 3 s by a 429 when the gate is decided.
    # The job's next thread replies go out meanwhile; the gate's message is closed by the
    # card edits once the Retry-After ran out (before: the replies waited for it, 3 s).
    st = await stack(worker=True)
    jid = await st.start_job()
    gate = await st.open_gate(jid, Step.GATE_DISABLE)
    st.store.inject("chat.update", "ratelimited", retry_after=3)
    await st.click(A1, gate, "pps_approve")
    job = await st.job(jid)
    card = st.cards(jid)[0]

    async def approved() -> Any:
        return next((c for c in st.store.calls_of("chat.postMessage")
                     if c.ok and c.args.get("thread_ts") == card.ts
                     and "approved" in str(c.args.get("text"))), None)

    reply = await st.wait_for(approved, what="the approval's thread reply")
    limited = next(c for c in st.store.calls_of("chat.update") if c.status == 429)
    assert reply.at < limited.at + 2, "the thread reply waited for the chat.update 429"

    async def closed() -> Any:
        m = st.store.find(job.channel, gate.ts)
        return m if m and not any(b.get("type") == "actions" for b in m.blocks) else None

    await st.wait_for(closed, what="the gate message closed")
    assert [c.public() for c in st.store.calls if c.early] == []
