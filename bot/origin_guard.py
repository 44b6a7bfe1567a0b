"""The Bolt middleware that enforces `handlers.origin.OriginPolicy` on every request that
passed the signature check, before any listener runs (HTTP and Socket Mode alike).

A refused command is acknowledged with an ephemeral refusal; a refused click is
acknowledged and the refusal posted to the clicker (ephemeral, in the background); any
other request from another workspace is acknowledged and dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from slack_bolt.response import BoltResponse

from bot import metrics
from bot.render.commands import render_reply
from handlers.origin import OriginPolicy, request_channel, request_team
from handlers.replies import Refused
from jobs.config.log import get_logger

# (channel, user, thread_ts, text): post a refusal only the clicker sees.
PostRefusal = Callable[[str, str, str | None, str], Coroutine[Any, Any, None]]
Middleware = Callable[..., Awaitable[BoltResponse | None]]

log = get_logger(__name__)


def origin_middleware(policy: OriginPolicy, post_refusal: PostRefusal) -> Middleware:
    """A Bolt global middleware (`app.use`) refusing requests from elsewhere."""
    background: set[asyncio.Task[None]] = set()

    async def guard(body: dict[str, Any], next: Callable[[], Awaitable[BoltResponse]]
                    ) -> BoltResponse | None:
        command = bool(body.get("command"))
        click = body.get("type") == "block_actions"
        team, channel = request_team(body), request_channel(body)
        refusal = policy.refusal(team, channel, in_channel=command or click)
        if refusal is None:
            return await next()
        user = str((body.get("user") or {}).get("id") or body.get("user_id") or "")
        kind = "command" if command else "click" if click else str(body.get("type") or "other")
        log.warning("request_refused_origin", kind=kind, team=team, channel=channel, user=user)
        if command:
            metrics.COMMANDS.labels("other", "refused").inc()
            msg = render_reply(Refused(refusal))
            return BoltResponse(status=200, body={"response_type": "ephemeral",
                                                  "text": msg.text, "blocks": msg.blocks})
        if click:
            metrics.ACTIONS.labels(str((body.get("actions") or [{}])[0].get("action_id")),
                                   "refused").inc()
            if channel and user:
                thread_ts = (body.get("message") or {}).get("thread_ts")
                task = asyncio.create_task(post_refusal(channel, user, thread_ts, refusal))
                background.add(task)
                task.add_done_callback(background.discard)
        return BoltResponse(status=200, body="")

    return guard
