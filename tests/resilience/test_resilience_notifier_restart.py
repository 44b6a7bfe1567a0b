"""The notifier across a real Redis restart: Redis is SIGKILLed right after Slack accepted a
post and before the notifier could store the message's ts (the event is still pending in
its consumer group), stays down a second and comes back from its AOF. Nothing may be lost
and nothing posted twice: one card, each thread reply once, each gate message once.

Prints `notifier-restart ...` with the post counts and the time the notifier took to resume.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from bot.notifier import card_writer
from jobs.rules.model import State
from tests.resilience.resilience_support import Rig, is_gate

StartRig = Callable[..., Awaitable[Rig]]
DOWN = 1.0


@pytest.mark.slow
async def test_resilience_redis_killed_between_slack_post_and_its_bookkeeping(
    rig: StartRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A short marker, so a re-post would show within the test (production: 30 s).
    monkeypatch.setattr(card_writer, "MARKER_SECONDS", 1)
    r = await rig(workers=1, slack=True)
    slack = r.slack
    assert slack is not None
    kills: list[str] = []
    ups: list[float] = []
    restarts: list[asyncio.Task[None]] = []
    created = asyncio.Event()

    async def after_post(args: dict[str, Any]) -> None:
        what = "card" if not args.get("thread_ts") else "gate" if is_gate(args) else "reply"
        if what in kills or what == "reply":
            return
        kills.append(what)
        # Not before the test's own request has its answer: the notifier can post the card
        # within the round trip that ends `create`, and Redis killed then failed the request.
        await created.wait()
        r.server.kill()

        async def back() -> None:
            await asyncio.sleep(DOWN)
            await r.server.start()
            ups.append(time.monotonic())

        restarts.append(asyncio.create_task(back()))

    slack.client.after_post = after_post
    job = await r.create("east")
    created.set()
    done = await r.until(job.id, lambda j: j.terminal, within=30, approve="shown")
    await r.notifier_drained()
    await asyncio.sleep(1.5)  # past the marker: a re-post would have happened by now
    await r.notifier_drained()

    cards = slack.cards(job.id)
    replies = Counter(m.text for m in slack.thread(cards[0])) if cards else Counter()
    gates = [a for a in slack.posts() if is_gate(a)]
    print(
        f"notifier-restart kills={kills} final={done.state.value} cards={len(cards)} "
        f"thread_replies={sum(replies.values())} max_same_reply={max(replies.values(), default=0)} "
        f"gate_posts={len(gates)} posts={len(slack.posts())}"
    )
    assert done.state is State.SUCCEEDED
    assert kills == ["card", "gate"] and len(ups) == 2
    assert len(cards) == 1, "card posted twice"
    assert slack.card_state(await r.job(job.id)) == "succeeded"
    assert max(replies.values(), default=0) == 1, [t for t, n in replies.items() if n > 1]
    assert len(gates) == 2, "a gate message was posted twice or lost"
    assert not slack.task.done(), "the notifier ended"

