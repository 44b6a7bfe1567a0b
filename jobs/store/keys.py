"""Every Redis key name the project uses, in one place (all under `PPS_REDIS_PREFIX`)."""

from __future__ import annotations

from dataclasses import dataclass

WORKER_GROUP = "workers"
NOTIFIER_GROUP = "notifier"


@dataclass(frozen=True)
class Keys:
    """Key names for one prefix. `Keys("pps:").job("J-0001") == "pps:job:J-0001"`."""

    prefix: str = "pps:"

    def job(self, job_id: str) -> str:
        """Hash: the job record (source of truth)."""
        return f"{self.prefix}job:{job_id}"

    def lease(self, job_id: str) -> str:
        """String: `SET NX PX` worker lease holding the owner token."""
        return f"{self.prefix}lease:{job_id}"

    def fence(self, job_id: str) -> str:
        """Counter: `INCR` fencing token source for the job."""
        return f"{self.prefix}fence:{job_id}"

    def cluster(self, name: str) -> str:
        """Hash: the one active job on a cluster (`job_id`, `requester`)."""
        return f"{self.prefix}cluster:{name}"

    def dedupe(self, key: str) -> str:
        """String: `SET NX EX` idempotency marker (trigger ids, action ids)."""
        return f"{self.prefix}dedupe:{key}"

    def idem(self, key: str) -> str:
        """String: idempotency key -> job id for job creation."""
        return f"{self.prefix}idem:{key}"

    @property
    def seq(self) -> str:
        """Counter: job id sequence."""
        return f"{self.prefix}seq"

    @property
    def queue(self) -> str:
        """Stream: work items (one step each), consumer group `workers`."""
        return f"{self.prefix}queue"

    @property
    def timers(self) -> str:
        """Zset: durable timers, member = `job_id|kind|token`, score = due time in ms."""
        return f"{self.prefix}timers"

    @property
    def events(self) -> str:
        """Stream: job events for the notifier, consumer group `notifier`."""
        return f"{self.prefix}events"

    @property
    def audit(self) -> str:
        """Stream: who did what, when."""
        return f"{self.prefix}audit"

    @property
    def active(self) -> str:
        """Set: ids of jobs not in a terminal state."""
        return f"{self.prefix}active"

    @property
    def history(self) -> str:
        """Zset: all job ids by creation time."""
        return f"{self.prefix}history"

    def cluster_history(self, name: str) -> str:
        """Zset: one cluster's job ids by creation time (score ms), written with the job."""
        return f"{self.prefix}history:{name}"

    @property
    def history_indexed(self) -> str:
        """String: set once the jobs made before `cluster_history` existed were indexed."""
        return f"{self.prefix}history_indexed"

    def upgrades_by(self, user: str) -> str:
        """Zset: one user's recent upgrade requests (score = when, ms), for the rate limit."""
        return f"{self.prefix}rate:upgrade:{user}"

    @property
    def epoch(self) -> str:
        """String: a marker written once; its disappearance means Redis lost its data."""
        return f"{self.prefix}epoch"

    @property
    def workers(self) -> str:
        """Zset: workers seen recently, member = worker name, score = last seen (ms)."""
        return f"{self.prefix}workers"

    def cache(self, name: str) -> str:
        """String: small caches (for example a Slack user group's members)."""
        return f"{self.prefix}cache:{name}"

    def card(self, job_id: str) -> str:
        """Hash: notifier bookkeeping for a job's card (ts, pending update)."""
        return f"{self.prefix}card:{job_id}"

    def fleet(self, cluster: str) -> str:
        """String: the last fleet poll of a cluster (JSON, `jobs.fleet.model.ClusterReading`)."""
        return f"{self.prefix}fleet:{cluster}"

    def fleet_lock(self, cluster: str) -> str:
        """String: `SET NX PX` lock of the one worker polling a cluster for the fleet view."""
        return f"{self.prefix}fleet-lock:{cluster}"

    @property
    def fleet_changes(self) -> str:
        """Counter: bumped when a fleet poll saw something new (builds, status, logins)."""
        return f"{self.prefix}fleet-changes"

    @property
    def home_viewers(self) -> str:
        """Zset: users who opened the App Home tab, score = last opened (ms)."""
        return f"{self.prefix}home-viewers"

    def home_pace(self, user: str) -> str:
        """String: `SET NX PX` marker: a Home view was published to `user` just now."""
        return f"{self.prefix}home-pace:{user}"
