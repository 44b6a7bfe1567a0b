"""The pacer's turns: one call in flight per bucket, urgent callers first, cancellation safe."""

from __future__ import annotations

import asyncio

from bot.slack_api import Turns


async def test_urgent_waiters_go_before_the_others_in_arrival_order() -> None:
    turn, order = Turns(), []
    await turn.acquire()  # a call in flight

    async def call(name: str, urgent: bool = False) -> None:
        await turn.acquire(urgent)
        order.append(name)
        await asyncio.sleep(0)
        turn.release()

    tasks = [asyncio.create_task(call(n, n.startswith("gate"))) for n in
             ("reply1", "reply2", "gate1", "reply3", "gate2")]
    await asyncio.sleep(0)
    turn.release()
    await asyncio.gather(*tasks)
    assert order == ["gate1", "gate2", "reply1", "reply2", "reply3"]
    assert not turn.busy


async def test_a_cancelled_waiter_neither_holds_nor_loses_the_turn() -> None:
    turn = Turns()
    await turn.acquire()
    gone = asyncio.create_task(turn.acquire())
    after = asyncio.create_task(turn.acquire())
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.sleep(0)
    turn.release()
    await asyncio.wait_for(after, 1)  # the turn passed over the cancelled one
    # Granted, then cancelled before it ran: the turn passes on.
    late = asyncio.create_task(turn.acquire())
    last = asyncio.create_task(turn.acquire())
    await asyncio.sleep(0)
    turn.release()  # grants `late`...
    late.cancel()  # ...which is cancelled before it runs
    await asyncio.wait_for(last, 1)
    turn.release()
    assert not turn.busy
