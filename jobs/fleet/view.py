"""The fleet at a glance, as data: per cluster its last reading, its active or scheduled
job, its last finished job and the marks (builds differ, older than the catalogue's newest).

`FleetView.facts()` is what the App Home tab and `/pps clusters` render. It reads Redis
only (a few round trips), never an appliance, so it fits in a slash command's ack.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

from jobs.config.clock import Clock
from jobs.config.inventory import Cluster, Inventory
from jobs.fleet.model import ClusterReading, builds_disagree, nodes_behind, unreachable_nodes
from jobs.rules.model import Job

LAST_JOB_SCAN = 500  # newest jobs searched for each cluster's last finished one


class FleetReads(Protocol):
    """What the view reads from the store (`jobs.store.fleet.FleetStore`)."""

    async def load_many(self, clusters: Sequence[str]) -> dict[str, ClusterReading]: ...

    async def last_finished(self, clusters: Collection[str], scan: int) -> dict[str, str]: ...


class JobReads(Protocol):
    """What the view reads about jobs (`jobs.service.JobService`)."""

    async def list_active(self) -> list[Job]: ...

    async def find_many(self, ids: Iterable[str]) -> list[Job]: ...


@dataclass(frozen=True)
class ClusterFacts:
    """One cluster as the fleet view shows it. Its derived facts are computed once: one
    reading is shared by every concurrent `/pps clusters` and Home render (`FleetView`),
    and recomputing them per access was a fifth of the bot's busy time with 344 clusters."""

    cluster: Cluster
    reading: ClusterReading | None
    active: Job | None  # the active or scheduled job holding the cluster
    last: Job | None  # the newest finished job
    newest: str | None  # the newest catalogue version

    @cached_property
    def disagree(self) -> bool:
        """The nodes that answered run different builds."""
        return self.reading is not None and builds_disagree(self.reading)

    @cached_property
    def behind(self) -> list[str]:
        """Nodes on an older build than the catalogue's newest."""
        return nodes_behind(self.reading, self.newest) if self.reading else []

    @cached_property
    def unreachable(self) -> list[str]:
        return unreachable_nodes(self.reading) if self.reading else []

    @cached_property
    def logins_off(self) -> bool:
        return self.reading is not None and self.reading.login_permission is False

    @cached_property
    def attention(self) -> bool:
        """Worth a look: marked, a node in trouble, logins off, or a job on it."""
        return bool(self.disagree or self.behind or self.unreachable or self.logins_off
                    or self.active is not None)


@dataclass(frozen=True)
class FleetFacts:
    """Every cluster of the inventory, in inventory order."""

    clusters: tuple[ClusterFacts, ...]
    newest: str | None
    poll_seconds: float
    at: float  # when these facts were read

    @cached_property
    def marked(self) -> list[ClusterFacts]:
        return [c for c in self.clusters if c.disagree or c.behind]


class FleetView:
    """Assembles `FleetFacts` from the stored readings and the job records."""

    def __init__(
        self,
        records: FleetReads,
        jobs: JobReads,
        inventory: Inventory,
        clock: Clock,
        poll_seconds: float,
        *,
        scan: int = LAST_JOB_SCAN,
    ) -> None:
        self.records = records
        self.jobs = jobs
        self.inventory = inventory
        self.clock = clock
        self.poll_seconds = poll_seconds
        self.scan = scan
        self._inflight: asyncio.Task[FleetFacts] | None = None

    async def facts(self) -> FleetFacts:
        """The fleet now. Callers that ask while a reading is under way share it (its reads
        began at most one reading ago): under 100 concurrent `/pps` clients, 1 in 6 asking
        for `clusters`, separate readings were a third of the bot's busy time (py-spy)."""
        task = self._inflight
        if task is None or task.done():
            task = self._inflight = asyncio.ensure_future(self._read())
        # Shielded: one caller cancelled (a client gone) does not cancel the others' reading.
        return await asyncio.shield(task)

    async def _read(self) -> FleetFacts:
        names = list(self.inventory.clusters)
        # Independent reads, side by side: under load each round trip waits its turn on
        # the event loop, and a reading made of them one after the other took seconds.
        readings, jobs, last_ids = await asyncio.gather(
            self.records.load_many(names), self.jobs.list_active(),
            self.records.last_finished(names, self.scan))
        active: dict[str, Job] = {}
        for job in jobs:  # newest first: keep the newest per cluster
            active.setdefault(job.cluster, job)
        found = {j.id: j for j in await self.jobs.find_many(last_ids.values())}  # one trip
        last: dict[str, Job] = {}
        for cluster, job_id in last_ids.items():
            done = found.get(job_id)
            if done is not None and done.cluster == cluster:
                last[cluster] = done
        newest = self.inventory.newest
        version = newest.version if newest else None
        return FleetFacts(
            clusters=tuple(
                ClusterFacts(c, readings.get(n), active.get(n), last.get(n), version)
                for n, c in self.inventory.clusters.items()
            ),
            newest=version,
            poll_seconds=self.poll_seconds,
            at=self.clock.now(),
        )
