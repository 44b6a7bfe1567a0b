"""Approvals through a user group fail closed: while `usergroups.users.list` fails, a cached
copy counts only up to twice the freshness window; after that a click through the group is
refused with a clear message (a member removed from the group cannot keep approving)."""

from __future__ import annotations

import json

import redis.asyncio as aioredis

from handlers.auth import GROUP_FRESH_SECONDS, Authorizer
from jobs.config.settings import Settings
from jobs.store.keys import Keys
from tests.fakes.clock import FakeClock

GROUP, MEMBER, LISTED = "S_APPROVERS", "U_MEMBER", "U_LISTED"
GROUP_STALE_SECONDS = 2 * GROUP_FRESH_SECONDS  # the issue: "twice the freshness window"


class FlakySlack:
    """usergroups.users.list: answers `members`, or fails while `down`."""

    def __init__(self) -> None:
        self.members = [MEMBER]
        self.down = False
        self.calls = 0

    async def lookup(self, group: str) -> list[str]:
        self.calls += 1
        if self.down:
            raise ConnectionError("slack unreachable")
        return list(self.members)


def _authorizer(redis: aioredis.Redis, keys: Keys, clock: FakeClock, slack: FlakySlack,
                **settings: str) -> Authorizer:
    s = Settings(_env_file=None, PPS_REDIS_PREFIX=keys.prefix,  # type: ignore[call-arg]
                 PPS_APPROVERS=f"{GROUP},{LISTED}", **settings)
    return Authorizer(s, redis, keys, slack.lookup, clock)


async def test_group_approval_uses_a_stale_copy_only_within_twice_the_window(
    redis: aioredis.Redis, keys: Keys, clock: FakeClock
) -> None:
    slack = FlakySlack()
    auth = _authorizer(redis, keys, clock, slack)
    assert (await auth.may_approve(MEMBER, None)).allowed  # fetched and cached
    slack.down = True
    clock.advance(GROUP_FRESH_SECONDS + 1)  # stale, Slack failing: the copy still counts
    assert (await auth.may_approve(MEMBER, None)).allowed
    clock.advance(GROUP_STALE_SECONDS - GROUP_FRESH_SECONDS)  # now older than twice
    verdict = await auth.may_approve(MEMBER, None)
    assert not verdict.allowed
    assert "could not check the approver group with Slack" in verdict.reason
    assert "older than 10 min" in verdict.reason
    assert (await auth.may_approve(LISTED, None)).allowed  # listed by id: unaffected
    assert not (await auth.may_decide(MEMBER, None, requester="U_OTHER")).allowed
    slack.down, slack.members = False, []  # Slack back: the member was removed meanwhile
    verdict = await auth.may_approve(MEMBER, None)
    assert not verdict.allowed and "Only approvers" in verdict.reason


async def test_operator_group_on_the_ack_path_fails_closed_too(
    redis: aioredis.Redis, keys: Keys, clock: FakeClock
) -> None:
    slack = FlakySlack()
    auth = _authorizer(redis, keys, clock, slack, PPS_OPERATORS=GROUP)
    await auth.refresh(GROUP)
    slack.down = True
    clock.advance(GROUP_STALE_SECONDS - 1)
    assert (await auth.may_operate(MEMBER)).allowed  # stale but usable; a refresh is tried
    clock.advance(2)
    verdict = await auth.may_operate(MEMBER)
    assert not verdict.allowed and "could not check the operator group" in verdict.reason
    cached = json.loads(await redis.get(keys.cache(f"usergroup:{GROUP}")) or "{}")
    assert cached["members"] == [MEMBER]  # kept for diagnosis, not trusted
