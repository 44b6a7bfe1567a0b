"""Tell the channels when Redis lost its data: jobs in flight are gone, and user logins
may still be disabled on their clusters (DESIGN §1: never locked out silently).

One bot process posts per loss (a `dedupe` key on the new epoch), to `PPS_CHANNEL` and to
the channel of every cluster that had a job in flight.
"""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.render.limits import Message, escape, message, section
from jobs.config.inventory import Inventory
from jobs.config.log import get_logger
from jobs.config.settings import Settings
from jobs.store.dataloss import DataLoss, DataLossGuard
from jobs.store.keys import Keys

log = get_logger(__name__)
CHECK_SECONDS = 5.0


def render_loss(loss: DataLoss) -> Message:
    """The channel alert (plain, escaped; names jobs and clusters only)."""
    head = ":rotating_light: *Redis lost its data.* Upgrade jobs in flight are gone."
    lines = [escape(line) for line in loss.text().splitlines()[1:]]
    return message(escape(loss.text()),
                   [section(head), *([section("\n".join(lines))] if lines else [])])


def alert_channels(loss: DataLoss, settings: Settings, inventory: Inventory) -> list[str]:
    """PPS_CHANNEL plus the channels of the clusters that had a job in flight."""
    out = [settings.PPS_CHANNEL] if settings.PPS_CHANNEL else []
    for job in loss.jobs:
        cluster = inventory.cluster(job.cluster)
        channel = (cluster.channel if cluster else None) or settings.PPS_CHANNEL
        if channel and channel not in out:
            out.append(channel)
    return out


class DataLossAlert:
    """Background task of the bot: look every few seconds, post once per loss."""

    def __init__(
        self,
        redis: aioredis.Redis,
        client: AsyncWebClient,
        guard: DataLossGuard,
        keys: Keys,
        settings: Settings,
        inventory: Inventory,
        every: float = CHECK_SECONDS,
    ) -> None:
        self.redis, self.client, self.guard, self.keys = redis, client, guard, keys
        self.settings, self.inventory, self.every = settings, inventory, every

    async def check_once(self) -> DataLoss | None:
        """One look; posts the alert when this process is the first to see the loss."""
        loss = await self.guard.tick()
        if loss is None:
            return None
        log.error("redis_lost_its_data", jobs=[j.job_id for j in loss.jobs])
        first = await self.redis.set(
            self.keys.dedupe(f"dataloss:{self.guard.epoch}"), "1", nx=True, ex=3600
        )
        if first:
            msg = render_loss(loss)
            for channel in alert_channels(loss, self.settings, self.inventory):
                try:
                    await self.client.chat_postMessage(channel=channel, **msg.kwargs())
                except SlackApiError as exc:
                    log.error("dataloss_alert_failed", channel=channel, error=str(exc))
        return loss

    async def run(self) -> None:
        while True:
            try:
                await self.check_once()
            except (RedisError, OSError) as exc:  # Redis away: the next look tells
                log.debug("dataloss_check_skipped", error=str(exc))
            await asyncio.sleep(self.every)
