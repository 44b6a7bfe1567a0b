"""Who may do what: operators (`PPS_OPERATORS`) and approvers (cluster or `PPS_APPROVERS`).

Both lists hold user ids (U…/W…) and user-group ids (S…). Group members come from
`usergroups.users.list`, cached in Redis (`Keys.cache("usergroup:<id>")`): fresh for
`GROUP_FRESH_SECONDS`. When Slack cannot be asked, a stale copy still counts up to
`GROUP_STALE_SECONDS` (twice the freshness window) old; past that, authorization through
the group fails closed (someone removed from the group must not keep approving while Slack
is unreachable) and the user is told why.

The slash-command ack path makes no Web API call, so for operator groups it reads the
cache only (fresh or stale) and, on a miss, starts a background refresh and asks the user
to retry; the bot also refreshes every configured group periodically (`refresh_all`).
The button path may call the Web API: it refreshes stale entries before deciding.
The two-person rule is the engine's (it refuses the requester); this module does not
duplicate it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import redis.asyncio as aioredis

from jobs.config.clock import Clock
from jobs.config.inventory import Cluster
from jobs.config.log import get_logger
from jobs.config.settings import Settings, split_ids
from jobs.store.keys import Keys

GROUP_FRESH_SECONDS = 300.0
GROUP_STALE_SECONDS = 2 * GROUP_FRESH_SECONDS
GROUP_KEEP_SECONDS = 86400  # the copy stays readable for diagnosis; it is trusted far less
# A user-group lookup: group id -> member user ids (the bot wires usergroups.users.list).
GroupLookup = Callable[[str], Awaitable[list[str]]]

log = get_logger(__name__)


@dataclass(frozen=True)
class Verdict:
    """An authorization answer; `reason` is a user-facing message when not allowed."""

    allowed: bool
    reason: str = ""


ALLOWED = Verdict(True)


def is_group(slack_id: str) -> bool:
    return slack_id.startswith("S")


class Authorizer:
    """Answers "may this user …?" for the handlers."""

    def __init__(
        self,
        settings: Settings,
        redis: aioredis.Redis,
        keys: Keys,
        lookup: GroupLookup,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.keys = keys
        self.lookup = lookup
        self.clock = clock
        self._refreshing: dict[str, asyncio.Task[None]] = {}

    # -- lists -------------------------------------------------------------------
    @property
    def operators(self) -> list[str]:
        return split_ids(self.settings.PPS_OPERATORS)

    def approvers(self, cluster: Cluster | None) -> list[str]:
        """The cluster's approvers, else `PPS_APPROVERS`."""
        if cluster is not None and cluster.approvers:
            return list(cluster.approvers)
        return split_ids(self.settings.PPS_APPROVERS)

    # -- group cache ---------------------------------------------------------------
    async def _cached(self, group: str) -> tuple[list[str], float] | None:
        """(members, age in seconds) from the cache, or None on a miss."""
        raw = await self.redis.get(self.keys.cache(f"usergroup:{group}"))
        if not raw:
            return None
        try:
            d = json.loads(raw)
            members = [str(u) for u in d["members"]]
            age = self.clock.now() - float(d["at"])
        except (ValueError, KeyError, TypeError):
            return None
        return members, age

    async def refresh(self, group: str) -> list[str]:
        """Fetch a group's members from Slack and cache them."""
        members = await self.lookup(group)
        value = json.dumps({"members": members, "at": self.clock.now()})
        await self.redis.set(self.keys.cache(f"usergroup:{group}"), value, ex=GROUP_KEEP_SECONDS)
        return members

    def refresh_soon(self, group: str) -> None:
        """Refresh a group in the background (at most one refresh per group at a time)."""
        if group in self._refreshing:
            return
        task = asyncio.create_task(self._refresh_quietly(group))
        self._refreshing[group] = task
        task.add_done_callback(lambda _t: self._refreshing.pop(group, None))

    async def _refresh_quietly(self, group: str) -> None:
        try:
            await self.refresh(group)
        except Exception as exc:  # a failed refresh must not kill the caller's task
            log.warning("usergroup_refresh_failed", group=group, error=repr(exc))

    async def refresh_all(self, clusters: Iterable[Cluster]) -> None:
        """Refresh every group named in PPS_OPERATORS, PPS_APPROVERS or a cluster."""
        groups = {g for g in self.operators + self.approvers(None) if is_group(g)}
        for c in clusters:
            groups.update(g for g in c.approvers if is_group(g))
        for g in sorted(groups):
            await self._refresh_quietly(g)

    async def _member(self, user: str, ids: list[str], *, may_fetch: bool) -> bool | None:
        """True/False, or None when a group could not be checked from the cache."""
        if user in ids:
            return True
        unknown = False
        for g in (i for i in ids if is_group(i)):
            cached = await self._cached(g)
            # A stale copy is a fallback for a while only; an older one is not trusted.
            usable = cached[0] if cached and cached[1] <= GROUP_STALE_SECONDS else None
            if cached is not None and cached[1] < GROUP_FRESH_SECONDS:
                members: list[str] | None = cached[0]
            elif may_fetch:
                try:
                    members = await self.refresh(g)
                except Exception as exc:  # Slack down: the stale copy, while it is usable
                    log.warning("usergroup_lookup_failed", group=g, error=repr(exc),
                                copy_age=None if cached is None else round(cached[1]),
                                fallback=usable is not None)
                    members = usable
            else:
                self.refresh_soon(g)
                members = usable
            if members is None:
                unknown = True
            elif user in members:
                return True
        return None if unknown else False

    # -- questions -------------------------------------------------------------------
    async def may_operate(self, user: str) -> Verdict:
        """May `user` run `upgrade` / `abort`? Cache only (this is the ack path)."""
        ops = self.operators
        if not ops:
            return ALLOWED
        member = await self._member(user, ops, may_fetch=False)
        if member:
            return ALLOWED
        if member is None:
            return Verdict(False, "I could not check the operator group with Slack lately, so "
                                  "I cannot count its members as operators; try again in a "
                                  "minute.")
        return Verdict(False, "Only operators (PPS_OPERATORS) may start or abort upgrades.")

    async def _is_approver(self, user: str, cluster: Cluster | None) -> bool | None:
        ids = self.approvers(cluster)
        return await self._member(user, ids, may_fetch=True) if ids else False

    def _refusal(self, cluster: Cluster | None, member: bool | None, who: str) -> Verdict:
        name = cluster.name if cluster else "this cluster"
        if member is None:
            return Verdict(False, "I could not check the approver group with Slack just now, "
                                  "and my last copy of it is older than "
                                  f"{GROUP_STALE_SECONDS / 60:.0f} min (or missing), so I "
                                  "cannot count its members as approvers. Try again in a "
                                  "minute; approvers listed by user id are not affected.")
        if not self.approvers(cluster):
            return Verdict(False, f"No approvers are configured for {name} (set the cluster's "
                                  "`approvers` or PPS_APPROVERS).")
        return Verdict(False, f"Only {who} of {name} can do that.")

    async def may_approve(self, user: str, cluster: Cluster | None) -> Verdict:
        """May `user` approve gates of jobs on `cluster`? (May call usergroups.users.list.)"""
        member = await self._is_approver(user, cluster)
        return ALLOWED if member else self._refusal(cluster, member, "approvers")

    async def may_decide(self, user: str, cluster: Cluster | None, requester: str) -> Verdict:
        """Reject or confirm: the job's requester, or an approver."""
        if user == requester:
            return ALLOWED
        member = await self._is_approver(user, cluster)
        return ALLOWED if member else self._refusal(cluster, member, "the requester or approvers")
