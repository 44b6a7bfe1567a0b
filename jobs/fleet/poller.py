"""The fleet poll: read every idle cluster's nodes (read-only) and store what was seen.

Workers run `FleetPoller.poll_due` on an APScheduler tick. A cluster is polled when its last
reading is older than `PPS_FLEET_POLL_SECONDS`, unless a started job holds it (that job
reads the cluster itself). One worker at a time polls a cluster: a Redis lock with an
expiry a little longer than the poll's own time bound. Only reads are made
(system-information, status/overview, active-users); an error is recorded on the node it
concerns ("unreachable" or the appliance's message), never raised.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from jobs.appliance.protocol import (
    STATUS_DISABLED,
    VIP,
    ActiveUsers,
    Appliance,
    ApplianceError,
    Overview,
    SystemInfo,
    Unreachable,
)
from jobs.config.clock import Clock
from jobs.config.inventory import Cluster, Inventory
from jobs.config.log import get_logger
from jobs.fleet.model import UNREACHABLE, ClusterReading, NodeReading

T = TypeVar("T")
log = get_logger(__name__)

CONCURRENCY = 8  # clusters one worker reads at once
LOCK_MARGIN_SECONDS = 5.0


def cluster_seconds(poll_seconds: float) -> float:
    """The time bound of one cluster's poll: half the interval, 2-30 s."""
    return min(30.0, max(2.0, poll_seconds / 2))


def tick_seconds(poll_seconds: float) -> float:
    """How often a worker looks for clusters due: a tenth of the interval, 0.05-30 s."""
    return max(0.05, min(30.0, poll_seconds / 10))


class PollRecords(Protocol):
    """What the poller needs from the store (`jobs.store.fleet.FleetStore`)."""

    async def load_many(self, clusters: Sequence[str]) -> dict[str, ClusterReading]: ...

    async def save(self, reading: ClusterReading) -> bool: ...

    async def lock(self, cluster: str, owner: str, seconds: float) -> bool: ...

    async def unlock(self, cluster: str, owner: str) -> bool: ...

    async def busy(self, cluster: str) -> bool: ...


@dataclass
class PollRound:
    """What one `poll_due` did, cluster names by outcome."""

    polled: list[str] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)  # a started job holds it
    locked: list[str] = field(default_factory=list)  # another worker is polling it
    fresh: list[str] = field(default_factory=list)  # read recently enough


def _problem(exc: BaseException, seconds: float) -> str:
    """How a failed read is recorded: no traceback, no secret (appliance messages have none)."""
    if isinstance(exc, Unreachable):
        return UNREACHABLE
    if isinstance(exc, ApplianceError):
        return exc.message
    if isinstance(exc, TimeoutError):
        return f"no answer within {seconds:g} s"
    return f"unexpected error ({type(exc).__name__})"


async def _bounded(call: Awaitable[T], seconds: float) -> T | str:
    """`call`'s answer, or the recorded problem when it fails or outlasts `seconds`."""
    try:
        return await asyncio.wait_for(call, seconds)
    except Exception as exc:
        return _problem(exc, seconds)


async def read_cluster(
    cluster: Cluster, appliance: Appliance, clock: Clock, seconds: float
) -> ClusterReading:
    """Read every node of `cluster` and its logins/sessions, within about `seconds`."""
    loop = asyncio.get_running_loop()
    started, read_at = loop.time(), clock.now()

    async def node(name: str) -> tuple[SystemInfo, Overview]:
        return await appliance.system_info(name), await appliance.overview(name)

    async def logins() -> ActiveUsers | str:
        problems = []
        for target in ([VIP] if cluster.vip else []) + cluster.node_names:
            try:
                return await appliance.active_users(target)
            except ApplianceError as exc:
                where = "the VIP" if target == VIP else target
                problems.append(f"{where}: {_problem(exc, seconds)}")
        return "; ".join(problems) or "no node to ask"

    answers, users = await asyncio.gather(
        asyncio.gather(*(_bounded(node(n), seconds) for n in cluster.node_names)),
        _bounded(logins(), seconds),
    )
    overviews = [a[1] for a in answers if not isinstance(a, str)]
    nodes = []
    for name, answer in zip(cluster.node_names, answers, strict=True):
        if isinstance(answer, str):
            nodes.append(NodeReading(name=name, error=answer))
            continue
        info, own = answer
        nodes.append(NodeReading(name=name, build=info.build, rollback_build=info.rollback_build,
                                 status=_status(cluster, name, [own, *overviews])))
    if isinstance(users, str):
        permission, sessions, error = None, None, f"active users: {users}"
    else:
        permission, sessions, error = users.login_permission, users.sessions, None
    return ClusterReading(
        cluster=cluster.name,
        read_at=read_at,
        nodes=tuple(nodes),
        login_permission=permission,
        sessions=sessions,
        error=error,
        seconds=round(loop.time() - started, 3),
    )


def _status(cluster: Cluster, name: str, overviews: list[Overview]) -> str:
    """The node's cluster status word: from its own overview first, then any other."""
    for ov in overviews:
        row = ov.member(name)
        if row is not None:
            return row.status if row.enabled else STATUS_DISABLED
    if cluster.mode == "standalone":
        return "standalone"
    return "not listed in the cluster"


class FleetPoller:
    """Polls the inventory's clusters that are due; any number of workers may run one."""

    def __init__(
        self,
        records: PollRecords,
        inventory: Inventory,
        appliances: Callable[[Cluster], Appliance],
        clock: Clock,
        poll_seconds: float,
        owner: str,
        *,
        concurrency: int = CONCURRENCY,
    ) -> None:
        self.records = records
        self.inventory = inventory
        self.appliances = appliances
        self.clock = clock
        self.poll_seconds = poll_seconds
        self.seconds = cluster_seconds(poll_seconds)
        self.owner = f"{owner}:{secrets.token_hex(4)}"
        self._slots = asyncio.Semaphore(concurrency)

    def due(self, reading: ClusterReading | None, now: float) -> bool:
        return reading is None or now - reading.read_at >= self.poll_seconds

    async def poll_due(self) -> PollRound:
        """Poll every cluster that is due, idle and not being polled by another worker."""
        done = PollRound()
        names = list(self.inventory.clusters)
        readings = await self.records.load_many(names)
        now = self.clock.now()
        due = [n for n in names if self.due(readings.get(n), now)]
        done.fresh = [n for n in names if n not in due]
        await asyncio.gather(*(self._poll_one(self.inventory.clusters[n], done) for n in due))
        return done

    async def _poll_one(self, cluster: Cluster, done: PollRound) -> None:
        async with self._slots:
            if await self.records.busy(cluster.name):
                done.busy.append(cluster.name)
                return
            if not await self.records.lock(cluster.name, self.owner,
                                           self.seconds + LOCK_MARGIN_SECONDS):
                done.locked.append(cluster.name)
                return
            try:
                # Another worker may have polled it between our read and our lock.
                latest = (await self.records.load_many([cluster.name])).get(cluster.name)
                if not self.due(latest, self.clock.now()):
                    done.fresh.append(cluster.name)
                    return
                reading = await read_cluster(cluster, self.appliances(cluster), self.clock,
                                             self.seconds)
                await self.records.save(reading)
                done.polled.append(cluster.name)
                log.debug("fleet_polled", cluster=cluster.name, seconds=reading.seconds,
                          problems=[n.name for n in reading.nodes if n.error])
            finally:
                await self.records.unlock(cluster.name, self.owner)
