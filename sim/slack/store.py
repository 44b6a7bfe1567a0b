"""The stand-in's memory: users, channels with their messages, each user's App Home tab,
recorded Web API calls.

One `StandinStore` per stand-in app; everything runs on the event loop, so plain
attribute updates are atomic. `version` increases on every visible change and wakes
long-polling readers of `GET /_standin/state`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

BOT_USER_ID = "U_PPSBOT"
BOT_ID = "B_PPSBOT"

# Methods Slack rate-limits hard enough to matter here; chat.postMessage is per channel.
RATE_LIMITED_METHODS = frozenset(
    {"chat.postMessage", "chat.update", "chat.postEphemeral", "usergroups.users.list",
     "views.publish"}
)
DEFAULT_TEAM_URL = "https://standin.slack.com/"  # until a request shows our own address


@dataclass(frozen=True)
class StandinUser:
    """A person in the stand-in workspace; `role` is shown by the demo page."""

    id: str
    name: str
    role: str


DEFAULT_USERS: tuple[StandinUser, ...] = (
    StandinUser("U_REQUESTER", "riley.requester", "requester"),
    StandinUser("U_APPROVER1", "alex.approver", "approver"),
    StandinUser("U_APPROVER2", "sam.approver", "approver"),
    StandinUser("U_STRANGER", "casey.stranger", "stranger"),
)
DEFAULT_USERGROUPS: dict[str, tuple[str, ...]] = {"S_APPROVERS": ("U_APPROVER1", "U_APPROVER2")}


@dataclass
class Message:
    """A message as the channel shows it (ephemeral ones only to `ephemeral_for`)."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    user: str = BOT_USER_ID
    thread_ts: str | None = None
    metadata: dict[str, Any] | None = None
    edited: bool = False
    reply_broadcast: bool = False
    ephemeral_for: str | None = None
    files: list[dict[str, Any]] = field(default_factory=list)  # shared by a file upload

    def public(self) -> dict[str, Any]:
        """The JSON shape of `GET /_standin/state`."""
        return {
            "ts": self.ts,
            "thread_ts": self.thread_ts,
            "user": self.user,
            "text": self.text,
            "blocks": self.blocks,
            "metadata": self.metadata,
            "edited": self.edited,
            "reply_broadcast": self.reply_broadcast,
            "ephemeral_for": self.ephemeral_for,
            "files": self.files,
        }

    def slack_shape(self) -> dict[str, Any]:
        """The `message` object Slack returns and puts into interaction payloads."""
        m: dict[str, Any] = {
            "type": "message",
            "ts": self.ts,
            "user": self.user,
            "text": self.text,
            "blocks": self.blocks,
        }
        if self.user == BOT_USER_ID:
            m["bot_id"] = BOT_ID
        if self.thread_ts:
            m["thread_ts"] = self.thread_ts
        if self.metadata is not None:
            m["metadata"] = self.metadata
        if self.files:
            m["files"] = self.files
        return m


@dataclass
class HomeTab:
    """The view an app published to one user's Home tab, and how often it did."""

    view: dict[str, Any]
    published_at: float
    publishes: int = 1

    def public(self) -> dict[str, Any]:
        return {"view": self.view, "published_at": self.published_at,
                "publishes": self.publishes}


@dataclass
class Call:
    """One Web API call as received; `early` marks a call made before its Retry-After;
    `token_type` is the kind of token it carried (`xoxb`, `xapp`), never the token."""

    method: str
    args: dict[str, Any]
    at: float
    status: int = 200
    ok: bool = True
    error: str | None = None
    early: bool = False
    token_type: str | None = None

    def public(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "args": self.args,
            "at": self.at,
            "status": self.status,
            "ok": self.ok,
            "error": self.error,
            "early": self.early,
            "token_type": self.token_type,
        }


@dataclass(frozen=True)
class RateLimit:
    """At most `limit` calls per `window` seconds per method (per channel for postMessage)."""

    limit: int = 1
    window: float = 1.0
    methods: frozenset[str] = RATE_LIMITED_METHODS


@dataclass
class _Fault:
    error: str  # a Slack error code, "ratelimited" (429) or "http_500"
    retry_after: int = 1


class StandinStore:
    """State of one stand-in workspace."""

    def __init__(
        self,
        users: Sequence[StandinUser] = DEFAULT_USERS,
        usergroups: Mapping[str, Iterable[str]] | None = None,
        rate_limit: RateLimit | None = None,
    ) -> None:
        self.users: dict[str, StandinUser] = {u.id: u for u in users}
        groups = DEFAULT_USERGROUPS if usergroups is None else usergroups
        self.usergroups: dict[str, list[str]] = {g: list(m) for g, m in groups.items()}
        self.rate_limit = rate_limit
        self.channels: dict[str, list[Message]] = {}
        self.homes: dict[str, HomeTab] = {}  # user id -> their Home tab
        # What auth.test answers as the workspace URL: the stand-in's own address, so links
        # to messages (`<url>archives/<channel>/p<ts>`) come back to its channel page.
        self.team_url = DEFAULT_TEAM_URL
        self.calls: list[Call] = []
        self.version = 0
        self._changed = asyncio.Event()
        self._last_ts: dict[str, int] = {}
        self._windows: dict[str, deque[float]] = {}
        self._not_before: dict[str, float] = {}
        self._faults: dict[str, deque[_Fault]] = {}

    # -- messages ---------------------------------------------------------------
    def next_ts(self, channel: str) -> str:
        """A unique, increasing ts for `channel` (microseconds since the epoch)."""
        now = int(time.time() * 1_000_000)
        ts = max(now, self._last_ts.get(channel, 0) + 1)
        self._last_ts[channel] = ts
        return f"{ts // 1_000_000}.{ts % 1_000_000:06d}"

    def add(self, msg: Message) -> Message:
        self.channels.setdefault(msg.channel, []).append(msg)
        self.touch()
        return msg

    def find(self, channel: str, ts: str) -> Message | None:
        for m in self.channels.get(channel, []):
            if m.ts == ts:
                return m
        return None

    def messages(self, channel: str, *, viewer: str | None = None) -> list[Message]:
        """Messages of a channel in order; ephemeral ones only for their viewer."""
        return [
            m
            for m in self.channels.get(channel, [])
            if m.ephemeral_for is None or m.ephemeral_for == viewer
        ]

    def publish_home(self, user: str, view: dict[str, Any]) -> HomeTab:
        """Replace `user`'s Home tab with `view` (views.publish)."""
        before = self.homes.get(user)
        tab = HomeTab(view, time.time(), (before.publishes + 1) if before else 1)
        self.homes[user] = tab
        self.touch()
        return tab

    def touch(self) -> None:
        """Record a visible change and wake long-polling readers."""
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_change(self, since: int, seconds: float) -> None:
        """Return once `version` differs from `since`, or after `seconds`."""
        if self.version != since:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), seconds)

    # -- calls, rate limits, faults ------------------------------------------------
    def record(self, call: Call) -> Call:
        self.calls.append(call)
        self.touch()
        return call

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def inject(self, method: str, error: str, count: int = 1, retry_after: int = 1) -> None:
        """Make the next `count` calls of `method` fail with `error` (Slack code,
        `"ratelimited"` for a 429 with `Retry-After`, or `"http_500"`)."""
        q = self._faults.setdefault(method, deque())
        q.extend(_Fault(error, retry_after) for _ in range(count))

    def take_fault(self, method: str) -> _Fault | None:
        q = self._faults.get(method)
        return q.popleft() if q else None

    def limit_bucket(self, method: str, args: Mapping[str, Any]) -> str:
        if method == "chat.postMessage":
            return f"{method}:{args.get('channel', '')}"
        return method

    def is_early(self, bucket: str, now: float) -> bool:
        """Was this call made before the Retry-After of an earlier 429 elapsed?"""
        return now < self._not_before.get(bucket, 0.0)

    def limited(self, bucket: str, method: str, now: float) -> int | None:
        """Retry-After seconds when this call exceeds the configured rate, else None."""
        rl = self.rate_limit
        if rl is None or method not in rl.methods:
            return None
        win = self._windows.setdefault(bucket, deque())
        while win and win[0] <= now - rl.window:
            win.popleft()
        if len(win) >= rl.limit:
            return max(1, math.ceil(win[0] + rl.window - now))
        win.append(now)
        return None

    def refuse_until(self, bucket: str, now: float, retry_after: int) -> None:
        self._not_before[bucket] = max(self._not_before.get(bucket, 0.0), now + retry_after)
