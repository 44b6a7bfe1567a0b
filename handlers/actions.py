"""Button clicks on gate messages: `pps_approve`, `pps_reject`, `pps_confirm`.

A click is de-duplicated per delivery (`Keys.dedupe`, SET NX EX), its opaque value decoded
to (job id, gate id), the clicker authorized, then the engine decides atomically: a
stale or second click comes back as `StaleGate` ("Already decided by <@U…> (approved).").
Who may click: approve → approvers; reject and confirm → the requester or approvers (the
engine refuses the requester's confirm when the two-person rule is on).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import redis.asyncio as aioredis

from handlers.auth import Authorizer, Verdict
from jobs.config.inventory import Inventory
from jobs.rules.errors import EngineError
from jobs.rules.model import Job
from jobs.service import JobService
from jobs.store.keys import Keys

ACTION_APPROVE = "pps_approve"
ACTION_REJECT = "pps_reject"
ACTION_CONFIRM = "pps_confirm"
GATE_ACTIONS: tuple[str, ...] = (ACTION_APPROVE, ACTION_REJECT, ACTION_CONFIRM)
DEDUPE_SECONDS = 3600


def encode_value(job_id: str, gate_id: str) -> str:
    """The opaque button value binding a click to one gate of one job."""
    return json.dumps({"job": job_id, "gate": gate_id}, separators=(",", ":"))


def decode_value(raw: str) -> tuple[str, str]:
    """(job id, gate id) from a button value; ValueError when it is not one of ours."""
    d = json.loads(raw)
    if not isinstance(d, dict) or not isinstance(d.get("job"), str) or not isinstance(
        d.get("gate"), str
    ):
        raise ValueError("not a gate button value")
    return d["job"], d["gate"]


@dataclass(frozen=True)
class Click:
    """One button click as delivered; `delivery_id` is the same for Slack's re-deliveries."""

    action_id: str
    value: str
    user_id: str
    channel_id: str
    delivery_id: str


@dataclass(frozen=True)
class ClickOutcome:
    """The decided job, or a refusal for the clicker, or a silently ignored duplicate."""

    job: Job | None = None
    refusal: str | None = None
    duplicate: bool = False


class ActionRunner:
    """Authorizes clicks and hands them to the engine's gate entry points."""

    def __init__(
        self,
        service: JobService,
        inventory: Inventory,
        authorizer: Authorizer,
        redis: aioredis.Redis,
        keys: Keys,
    ) -> None:
        self.service = service
        self.inventory = inventory
        self.auth = authorizer
        self.redis = redis
        self.keys = keys

    async def run(self, click: Click) -> ClickOutcome:
        """Decide one click; never raises an `EngineError` (it becomes a refusal)."""
        fresh = await self.redis.set(
            self.keys.dedupe(f"action:{click.delivery_id}"), "1", nx=True, ex=DEDUPE_SECONDS
        )
        if not fresh:
            return ClickOutcome(duplicate=True)
        if click.action_id not in GATE_ACTIONS:
            return ClickOutcome(refusal="That button is not one I know.")
        try:
            job_id, gate_id = decode_value(click.value)
        except ValueError:
            return ClickOutcome(refusal="That button is not one I know.")
        try:
            job = await self.service.get(job_id)
            verdict = await self._authorize(click, job)
            if not verdict.allowed:
                return ClickOutcome(refusal=verdict.reason)
            decide = self._entry_point(click.action_id)
            return ClickOutcome(job=await decide(job_id, gate_id, click.user_id))
        except EngineError as exc:
            return ClickOutcome(refusal=exc.message)

    async def _authorize(self, click: Click, job: Job) -> Verdict:
        cluster = self.inventory.cluster(job.cluster)
        if click.action_id == ACTION_APPROVE:
            return await self.auth.may_approve(click.user_id, cluster)
        return await self.auth.may_decide(click.user_id, cluster, job.requester)

    def _entry_point(self, action_id: str) -> Callable[[str, str, str], Awaitable[Job]]:
        return {
            ACTION_APPROVE: self.service.approve,
            ACTION_REJECT: self.service.reject,
            ACTION_CONFIRM: self.service.confirm,
        }[action_id]
