"""The Slack suite's running stack: the bot and the Slack stand-in (and, when asked, a
worker) with helpers to drive them as Slack would and to read the stand-in's channels.

The `stack` fixture (conftest.py) starts them; tests get `Stack`s from it.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import redis.asyncio as aioredis

from bot.server import BotRuntime
from jobs.config.inventory import Inventory
from jobs.config.settings import Settings
from jobs.rules.model import Job, State, Step
from jobs.store.keys import Keys
from sim.slack.signing import Signer, block_actions_body, block_actions_payload, slash_command_body
from sim.slack.socket_mode import SocketHub
from sim.slack.store import Message, StandinStore
from tests.fakes import FakeCluster

SECRET = "test-signing-secret-5f2a9c"
CMD_CHANNEL = "C_CMD"
PPS_CHANNEL = "C_PPS"
EAST_CHANNEL = "C_EAST"
REQUESTER = "U_REQUESTER"
APP_TOKEN = "xapp-1-A0PPSBOT-1-test-app-token"
SOCKET_ACK_SECONDS = 10.0  # the stand-in's wait for a Socket Mode ack (Slack's is 3 s)
FAST_FAKE = {"install_seconds": 0.2, "reboot_seconds": 0.3, "rejoin_seconds": 0.2}
SLACK_TIMINGS = {
    "PPS_POLL_SECONDS": 0.1,
    "PPS_SETTLE_SECONDS": 0.2,
    "PPS_REBOOT_TIMEOUT_SECONDS": 30.0,
    "PPS_REMINDER_SECONDS": 600.0,
    "PPS_LEASE_SECONDS": 1.0,  # also keeps the worker's blocking read (lease/2) short
}


@dataclass
class Stack:
    """A running bot + stand-in (+ optional worker) and helpers to drive them."""

    settings: Settings
    redis: aioredis.Redis
    keys: Keys
    inventory: Inventory
    runtime: BotRuntime
    store: StandinStore
    bot_url: str
    standin_url: str
    http: httpx.AsyncClient
    fakes: dict[str, FakeCluster] = field(default_factory=dict)
    socket: SocketHub | None = None  # the stand-in's Socket Mode side (`socket=True`)

    @property
    def signer(self) -> Signer:
        return Signer(self.bot_url + "/slack/events", SECRET)

    @property
    def service(self) -> Any:
        return self.runtime.service

    async def command(
        self, text: str, user: str = REQUESTER, channel: str = CMD_CHANNEL,
        trigger_id: str | None = None, **flags: Any,
    ) -> httpx.Response:
        """A signed `/pps` slash command straight to the bot."""
        body = slash_command_body(user_id=user, channel_id=channel, text=text,
                                  response_url=f"{self.standin_url}/_standin/response/none",
                                  trigger_id=trigger_id)
        return await self.signer.send(self.http, body, **flags)

    async def ack_text(self, text: str, user: str = REQUESTER, **kw: Any) -> str:
        """Send a command, check the ack is an ephemeral 200, return its visible text."""
        resp = await self.command(text, user=user, **kw)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["response_type"] == "ephemeral"
        return "\n".join(
            b["text"]["text"] for b in body.get("blocks", []) if b.get("type") == "section"
        )

    async def start_job(self, text: str = "upgrade lab", user: str = REQUESTER) -> str:
        """Send an `upgrade` command; the job id the ack names in inline code."""
        resp = await self.command(text, user=user)
        m = re.search(r"`(J-[A-Za-z0-9-]{1,22})`", resp.text)
        assert resp.status_code == 200 and m, resp.text
        return m.group(1)

    async def click(
        self, user: str, msg: Message, action_id: str, **flags: Any
    ) -> httpx.Response:
        """A signed block_actions click on a button of `msg`."""
        button = next(
            el for b in msg.blocks if b.get("type") == "actions" for el in b["elements"]
            if el.get("action_id") == action_id
        )
        payload = block_actions_payload(
            user_id=user, channel_id=msg.channel, message=msg.slack_shape(),
            action_id=action_id, value=button["value"],
            response_url=f"{self.standin_url}/_standin/response/none",
        )
        return await self.signer.send(self.http, block_actions_body(payload), **flags)

    async def wait_for(
        self, check: Callable[[], Awaitable[Any]], seconds: float = 15.0, what: str = ""
    ) -> Any:
        """Poll `check` until it returns something truthy."""
        deadline = time.monotonic() + seconds
        while True:
            got = await check()
            if got:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what or check}")
            await asyncio.sleep(0.05)

    async def job(self, job_id: str) -> Job:
        job: Job = await self.service.get(job_id)
        return job

    async def until_state(self, job_id: str, *states: State) -> Job:
        """Wait (30 s at most) for the job to be in one of `states`, finished if terminal."""
        async def reached() -> Job | None:
            job = await self.job(job_id)
            return job if job.state in states and (not job.terminal or job.finished_at) else None
        found: Job = await self.wait_for(reached, seconds=30, what=f"{job_id} in {states}")
        return found

    async def job_ids(self) -> list[str]:
        return [j.id for j in await self.service.history(limit=100)]

    def cards(self, job_id: str) -> list[Message]:
        """Top-level messages carrying the job's pps_job metadata."""
        return [
            m for msgs in self.store.channels.values() for m in msgs
            if m.thread_ts is None and m.metadata
            and m.metadata.get("event_payload", {}).get("job_id") == job_id
        ]

    async def card_in(self, job_id: str, state: str, summary: str | None = None) -> Message:
        """Wait for the job's card to show `state` (and, if given, a thread reply containing
        `summary`: the card may show the end before the FINISHED event was handled)."""
        async def shows() -> Message | None:
            cards = self.cards(job_id)
            meta = cards[0].metadata if cards else None
            if meta is None or meta["event_payload"]["state"] != state:
                return None
            if summary and not any(summary in m.text for m in self.thread(cards[0])):
                return None
            return cards[0]
        msg: Message = await self.wait_for(shows, seconds=40, what=f"card of {job_id} {state}")
        return msg

    def gate_messages(self, job_id: str, action_id: str = "pps_approve") -> list[Message]:
        """Messages with a button of `action_id` for this job (newest last)."""
        out = []
        for msgs in self.store.channels.values():
            for m in msgs:
                for b in m.blocks:
                    for el in b.get("elements", []) if b.get("type") == "actions" else []:
                        if el.get("action_id") == action_id and \
                                json.loads(el["value"])["job"] == job_id:
                            out.append(m)
        return out

    async def gate(self, job_id: str, action_id: str = "pps_approve", count: int = 1) -> Message:
        """Wait for the `count`-th gate message of the job with `action_id` buttons; a copy,
        as the user saw it (the stand-in edits its own message in place)."""
        async def found() -> Message | None:
            msgs = self.gate_messages(job_id, action_id)
            return copy.deepcopy(msgs[count - 1]) if len(msgs) >= count else None
        msg: Message = await self.wait_for(found, what=f"gate message {count} of {job_id}")
        return msg

    async def open_gate(self, job_id: str, step: Step) -> Message:
        """Wait for the job's open gate at `step` to be shown with buttons; a copy of it."""
        async def found() -> Message | None:
            job = await self.job(job_id)
            gate = job.open_gate()
            if gate is None or gate.step is not step or not gate.message_ts:
                return None
            m = self.store.find(job.channel, gate.message_ts)
            if m is None or not any(b.get("type") == "actions" for b in m.blocks):
                return None
            return copy.deepcopy(m)
        msg: Message = await self.wait_for(found, what=f"open gate at {step} of {job_id}")
        return msg

    def calls_on(self, method: str, ts: str) -> list[Any]:
        """Recorded calls of `method` that target (chat.update) or answered `ts`."""
        return [c for c in self.store.calls_of(method) if c.args.get("ts") == ts]

    def thread(self, card: Message) -> list[Message]:
        return [m for m in self.store.channels.get(card.channel, [])
                if m.thread_ts == card.ts]

    def ephemerals(self, user: str) -> list[Message]:
        return [m for msgs in self.store.channels.values() for m in msgs
                if m.ephemeral_for == user]

    async def ephemeral_containing(self, user: str, text: str) -> Message:
        async def found() -> Message | None:
            return next((m for m in self.ephemerals(user) if text in m.text
                         or any(text in json.dumps(b) for b in m.blocks)), None)
        msg: Message = await self.wait_for(found, what=f"ephemeral for {user}: {text!r}")
        return msg


StackFactory = Callable[..., Awaitable[Stack]]
