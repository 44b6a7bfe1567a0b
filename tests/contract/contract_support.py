"""Contract test support: the documented calls of PPS-API.md and a run of the real engine.

`undocumented(calls)` lists every recorded request that PPS-API.md does not describe (path,
method, authentication, a 4xx the fake gave a malformed request). `Run` drives JobService +
an in-process Worker + the production client against a `FakeCluster`, on the real Redis.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from jobs.rules.model import Job, Step
from jobs.service import JobService, UpgradeRequest
from tests.contract.contract_config import is_configuration
from tests.contract.contract_fake import API, Call, FakeCluster
from tests.fakes import JobDriver

REQUESTER, APPROVER = "UCTREQ01", "UCTAPP02"
RUNNING, TARGET = "9.1R17 (build 27583)", "9.1R18 (build 29865)"
CLUSTER = "ct"
ADMIN, KEY = "admin", "key"
# (method, path) -> the authentication PPS-API.md prescribes for it.
DOCUMENTED: dict[tuple[str, str], str] = {
    ("POST", API + "realm_auth"): ADMIN,
    ("GET", API + "auth"): ADMIN,  # legacy, only after realm_auth answered 404
    ("GET", API + "system/system-information"): KEY,
    ("GET", API + "system/active-users"): KEY,
    ("GET", API + "system/status/overview"): KEY,
    ("POST", API + "system/binary-configuration"): KEY,
    ("PUT", API + "system/active-users"): KEY,
    ("POST", API + "system/maintenance/upgrade"): KEY,
}
# A key the client cannot know is stale (expired, or lost in a reboot) is still the
# documented form: api key as user, empty password. The fake answers 401.
KEY_FORMS = frozenset({"key", "stale-key", "unknown-key"})
INSTALL = API + "system/maintenance/upgrade"
USERS = API + "system/active-users"
ASSUMED = frozenset({("PUT", USERS), ("POST", INSTALL)})


def undocumented(calls: list[Call], allow: frozenset[int] = frozenset()) -> list[str]:
    """One line per call outside PPS-API.md; `allow`: statuses the [assumed] writes answer."""
    bad: list[str] = []
    realm_404: set[str] = set()
    for c in calls:
        why: list[str] = []
        want = DOCUMENTED.get((c.method, c.path))
        if is_configuration(c.method, c.path.removeprefix(API)):
            want = KEY  # the configuration tree: the root and the hrefs it links to
        if is_configuration(c.method, c.path.removeprefix(API)):
            want = KEY  # the configuration tree: the root and the hrefs it links to
        if want is None:
            why.append("not a documented call")
        elif want == ADMIN and c.auth != "admin":
            why.append(f"must use the admin's Basic auth, used {c.auth}")
        elif want == KEY and c.auth not in KEY_FORMS:
            why.append(f"must use the api key with an empty password, used {c.auth}")
        if c.path == API + "realm_auth" and c.status == 404:
            realm_404.add(c.port)
        if c.path == API + "auth" and c.port not in realm_404:
            why.append("legacy auth without trying realm_auth first")
        if c.status in (400, 404, 405, 422, 501):
            probe = c.path == API + "realm_auth" and c.status == 404  # then legacy auth
            refused = (c.method, c.path) in ASSUMED and c.status in allow
            if not (probe or refused):
                why.append(f"answered {c.status}: {c.note}")
        if why:
            bad.append(f"{c.port}: {c.method} {c.path}: {'; '.join(why)}")
    return bad


def installs(calls: list[Call]) -> list[tuple[str, int]]:
    """(port, status) of every install upload."""
    return [(c.port, c.status) for c in calls if c.method == "POST" and c.path == INSTALL]


def permission_writes(calls: list[Call]) -> list[tuple[str, object, int]]:
    """(port, body, status) of every PUT active-users."""
    return [(c.port, c.body, c.status) for c in calls if c.method == "PUT" and c.path == USERS]


def user_reads(calls: list[Call]) -> list[tuple[str, dict[str, str]]]:
    """(port, query) of every GET active-users."""
    return [(c.port, dict(c.query)) for c in calls if c.method == "GET" and c.path == USERS]


@dataclass
class Run(JobDriver):
    """One engine run against one fake cluster."""

    approver = APPROVER

    fake: FakeCluster
    service: JobService

    async def create(self, target: str | None = None) -> Job:
        job, created = await self.service.create_job(
            UpgradeRequest(cluster=CLUSTER, requester=REQUESTER, channel="C0CT", target=target)
        )
        assert created
        return job

    async def happy(self, target: str | None = None) -> Job:
        """Create, approve both gates as a non-requester, wait for the end."""
        job = await self.create(target)
        await self.approve_at(job.id, Step.GATE_DISABLE)
        await self.approve_at(job.id, Step.GATE_ENABLE)
        return await self.until(job.id, lambda j: j.terminal)


Start = Callable[..., Awaitable[Run]]  # the `contract` fixture
