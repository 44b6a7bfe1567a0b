"""Acting as the team in Slack: request upgrades through the stand-in, see each approval
message appear, click it as a different approver, and wait for jobs to finish.

Gates are seen the way the engine announces them: a `gate_opened` event in the `events`
stream (read without a consumer group, so the notifier is undisturbed), then the gate's
message ts once the notifier posted it (`gate_ts:<gate>` in the job hash): that moment is
when the message became visible in the channel.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import redis.asyncio as aioredis

from benchmarks.deployment import REQUESTER, Deployment, approver, channel_of

TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
# The id of the job the ack says it made: not a failure reply's `ref`, nor the running job
# a refusal names (a dry run of item 1 still running on the cluster was once taken for it).
_JOB_ID = re.compile(r"`(J-[A-Za-z0-9-]{1,22})` (?:queued|scheduled) for")


@dataclass
class Gate:
    """One approval message as the team saw it."""

    job_id: str
    gate_id: str
    opened_ms: int  # the gate_opened event's stream time (Redis clock, ms)
    channel: str = ""
    ts: str = ""
    visible_at: float = 0.0  # epoch seconds when the message ts was seen
    clicked_at: float = 0.0


@dataclass
class Driver:
    """Commands and clicks against one deployment."""

    dep: Deployment
    redis: aioredis.Redis
    http: httpx.AsyncClient
    clicks: int = 0
    gates: list[Gate] = field(default_factory=list)

    def key(self, suffix: str) -> str:
        return self.dep.prefix + suffix

    async def request(self, cluster_index: int, text_tail: str = "") -> str:
        """`/pps upgrade <cluster>` as the requester; the job id from the ack."""
        from benchmarks.deployment import cluster_name

        body = {"user_id": REQUESTER, "channel_id": channel_of(cluster_index),
                "text": f"upgrade {cluster_name(cluster_index)}{text_tail}", "transport": "http"}
        r = await self.http.post(f"{self.dep.cfg.page_url}_standin/command", json=body)
        reply = r.json()
        text = json.dumps(reply.get("body"))
        m = _JOB_ID.search(text)
        if reply.get("status") != 200 or m is None:
            raise RuntimeError(f"upgrade refused: {text[:300]}")
        return m.group(1)

    async def click(self, gate: Gate, user: str | None = None) -> dict[str, Any]:
        """Approve `gate` through the stand-in (a signed block_actions to the bot)."""
        self.clicks += 1
        body = {"user_id": user or approver(self.clicks), "channel_id": gate.channel,
                "message_ts": gate.ts, "action_id": "pps_approve", "transport": "http"}
        gate.clicked_at = time.time()
        r = await self.http.post(f"{self.dep.cfg.page_url}_standin/click", json=body)
        out: dict[str, Any] = r.json()
        if out.get("status") != 200:
            raise RuntimeError(f"click answered {out}")
        return out

    async def watch_gates(self, on_visible: Callable[[Gate], Awaitable[None]],
                          stop: asyncio.Event, poll: float = 0.01) -> None:
        """Call `on_visible` for every approval message posted from now on."""
        newest: Any = await self.redis.xrevrange(self.key("events"), count=1)
        last = newest[0][0] if newest else "0-0"
        pending: list[Gate] = []
        while not stop.is_set():
            got: Any = await self.redis.xread({self.key("events"): last}, count=500, block=20)
            for _stream, entries in got or []:
                for eid, f in entries:
                    last = eid
                    if f.get("kind") == "gate_opened":
                        data = json.loads(f.get("data") or "{}")
                        if data.get("gate_kind", "approval") == "approval":
                            pending.append(Gate(f["job_id"], str(data["gate_id"]),
                                                int(eid.split("-")[0])))
            if not pending:
                continue
            pipe = self.redis.pipeline(transaction=False)
            for g in pending:
                pipe.hmget(self.key(f"job:{g.job_id}"), ["gate_ts:" + g.gate_id, "channel"])
            still: list[Gate] = []
            answers: list[Any] = await pipe.execute()
            for g, (ts, channel) in zip(pending, answers, strict=True):
                if ts:
                    g.ts, g.channel, g.visible_at = ts, channel, time.time()
                    self.gates.append(g)
                    await on_visible(g)
                else:
                    still.append(g)
            pending = still
            if pending:
                await asyncio.sleep(poll)

    async def states(self, job_ids: list[str]) -> dict[str, str]:
        pipe = self.redis.pipeline(transaction=False)
        for j in job_ids:
            pipe.hget(self.key(f"job:{j}"), "state")
        return dict(zip(job_ids, await pipe.execute(), strict=True))

    async def wait_finished(self, job_ids: list[str], within: float) -> dict[str, str]:
        deadline = time.monotonic() + within
        while True:
            st = await self.states(job_ids)
            if all(s in TERMINAL for s in st.values()) or time.monotonic() > deadline:
                return st
            await asyncio.sleep(0.2)

    async def wait_idle(self, within: float) -> int:
        """Wait (at most `within` s) until no job of the deployment is active (a phase's
        jobs, such as item 1's dry runs, do not run under the next one's measurement);
        how many were still active at the end."""
        deadline = time.monotonic() + within
        while True:
            keys = [k async for k in self.redis.scan_iter(match=self.key("job:*"), count=1000)]
            pipe = self.redis.pipeline(transaction=False)
            for k in keys:
                pipe.hget(k, "state")
            active = sum(1 for s in await pipe.execute() if s and s not in TERMINAL)
            if not active or time.monotonic() > deadline:
                return active
            await asyncio.sleep(0.5)

    async def durations(self, job_ids: list[str]) -> dict[str, float]:
        """Seconds from creation to finish of each finished job."""
        pipe = self.redis.pipeline(transaction=False)
        for j in job_ids:
            pipe.hmget(self.key(f"job:{j}"), ["created_at", "finished_at"])
        out = {}
        for j, (c, f) in zip(job_ids, await pipe.execute(), strict=True):
            if c and f:
                out[j] = float(f) - float(c)
        return out


def make_driver(dep: Deployment) -> Driver:
    redis = aioredis.Redis.from_url(dep.redis_url, decode_responses=True)
    return Driver(dep, redis, httpx.AsyncClient(timeout=60,
                                                limits=httpx.Limits(max_connections=200)))
