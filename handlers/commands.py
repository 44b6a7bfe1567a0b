"""Run a parsed `/pps` command: validate, authorize, call the engine, return a `Reply`.

This is the ack path: it makes no appliance call and no Slack Web API call, only the
Redis round trips of `JobService` (and the user-group cache read of `Authorizer`).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from handlers import grammar
from handlers.at_time import AtError, resolve_at
from handlers.auth import Authorizer
from handlers.replies import (
    Aborted,
    ClusterList,
    ClusterReport,
    HelpText,
    JobList,
    JobReport,
    Queued,
    RateLimited,
    Refused,
    Reply,
    ReportQueued,
    Usage,
)
from jobs.config.clock import Clock
from jobs.config.inventory import Cluster, Inventory
from jobs.config.settings import Settings
from jobs.fleet.view import FleetView
from jobs.rules.errors import EngineError, UnknownCluster
from jobs.rules.model import Job
from jobs.service import JobService, UpgradeRequest

HISTORY_LIMIT = 20
# A command delivered again (same trigger id, user, channel and text) within this many
# seconds maps to the job the first delivery made.
REDELIVERY_SECONDS = 300
KNOWN_CLUSTERS_SHOWN = 20  # an unknown cluster name is answered with at most this many


@dataclass(frozen=True)
class Caller:
    """Who sent the command, from where (Slack ids) and the delivery's trigger id."""

    user_id: str
    channel_id: str
    trigger_id: str | None = None


# Posts a job's change record in its thread in the background (the bot wires it: it makes
# Web API calls, which the ack path never waits for).
ReportHook = Callable[[Job, "Caller"], Awaitable[None]]


class CommandRunner:
    """Executes `/pps` commands against the engine."""

    reports: ReportHook | None = None  # `/pps report`; None: refused

    def __init__(
        self,
        service: JobService,
        inventory: Inventory,
        settings: Settings,
        authorizer: Authorizer,
        clock: Clock,
        *,
        fleet: FleetView,
    ) -> None:
        self.fleet = fleet  # what `/pps clusters` shows (Redis reads only)
        self.service = service
        self.inventory = inventory
        self.settings = settings
        self.auth = authorizer
        self.clock = clock

    async def run(self, text: str, caller: Caller) -> Reply:
        """Parse and run; engine refusals become `Refused`, bad input `Usage`."""
        try:
            cmd = grammar.parse(text)
        except grammar.ParseError as exc:
            return Usage(exc.problem, exc.usage)
        try:
            return await self._dispatch(cmd, caller)
        except EngineError as exc:
            return Refused(exc.message)

    async def _dispatch(self, cmd: grammar.Command, caller: Caller) -> Reply:
        match cmd:
            case grammar.Help():
                return HelpText()
            case grammar.Upgrade():
                return await self._upgrade(cmd, caller)
            case grammar.Rollback():
                return await self._rollback(cmd, caller)
            case grammar.Status(target=None) | grammar.ListJobs():
                # Side by side (one round trip of waiting, not two); the count only shows
                # when there are jobs.
                jobs, alive = await asyncio.gather(self.service.list_active(),
                                                   self.service.workers_alive())
                workers = alive if jobs else None
                return JobList("Active and scheduled jobs", jobs, "No active or scheduled jobs.",
                               workers)
            case grammar.Status(target=str(target)):
                return await self._status(target)
            case grammar.Abort():
                verdict = await self.auth.may_operate(caller.user_id)
                if not verdict.allowed:
                    return Refused(verdict.reason)
                return Aborted(await self.service.abort(cmd.job_id, caller.user_id))
            case grammar.History():
                if cmd.cluster is not None and self.inventory.cluster(cmd.cluster) is None:
                    return self.unknown_cluster(cmd.cluster)
                jobs = await self.service.history(cmd.cluster, limit=HISTORY_LIMIT)
                where = f" on {cmd.cluster}" if cmd.cluster else ""
                return JobList(f"Recent jobs{where}", jobs, f"No jobs yet{where}.")
            case grammar.Report():
                return await self._report(cmd, caller)
            case grammar.Clusters():
                return ClusterList(await self.fleet.facts())
        raise AssertionError(f"unhandled command {cmd!r}")  # pragma: no cover

    def unknown_cluster(self, name: str) -> Refused:
        """The answer to a cluster name not in the inventory (nothing is read for it)."""
        names = sorted(self.inventory.clusters)
        shown = ", ".join(names[:KNOWN_CLUSTERS_SHOWN]) or "none"
        more = f" and {len(names) - KNOWN_CLUSTERS_SHOWN} more" \
            if len(names) > KNOWN_CLUSTERS_SHOWN else ""
        return Refused(f"{UnknownCluster(name).message} Clusters in the inventory: "
                       f"{shown}{more} (`/pps clusters` lists them).")

    def progress_channel(self, cluster_channel: str | None, caller: Caller) -> str:
        """Where the job's card goes: the cluster's channel, PPS_CHANNEL, else here."""
        return cluster_channel or self.settings.PPS_CHANNEL or caller.channel_id

    async def _upgrade(self, cmd: grammar.Upgrade, caller: Caller) -> Reply:
        if cmd.version is not None and self.inventory.firmware_for(cmd.version) is None:
            have = ", ".join(f.version for f in self.inventory.firmware) or "none"
            return Refused(f"Version {cmd.version} is not in the firmware catalogue "
                           f"(available: {have}).")
        return await self._request(cmd, caller, "upgrade", grammar.USAGE_LINES[0])

    async def _rollback(self, cmd: grammar.Rollback, caller: Caller) -> Reply:
        """As `_upgrade` (same authorization, window, rate limit, lock and ack), with the
        rollback procedure: no version; preflight finds the build on the rollback partitions."""
        return await self._request(cmd, caller, "rollback", grammar.usage_of("rollback"))

    async def _request(
        self, cmd: grammar.Upgrade | grammar.Rollback, caller: Caller, procedure: str, usage: str
    ) -> Reply:
        """Create an upgrade or a rollback job: authorization, the cluster, `--at` inside the
        window, the per-user limit (dry runs included), then the job and its ack."""
        verdict = await self.auth.may_operate(caller.user_id)
        if not verdict.allowed:
            return Refused(verdict.reason)
        cluster = self.inventory.cluster(cmd.cluster)
        if cluster is None:
            return self.unknown_cluster(cmd.cluster)
        at: float | None = None
        if cmd.at is not None:
            try:
                at = resolve_at(cmd.at, self.clock.now(), cluster.window.tz if cluster.window
                                else None)
            except AtError as exc:
                return Usage(str(exc), usage)
            outside = self._outside_window(cluster, at)
            if outside is not None:
                return outside
        channel = self.progress_channel(cluster.channel, caller)
        idem = await self._idempotency_key(cmd, caller)
        request_id = idem or secrets.token_hex(8)
        retry_at = await self.service.count_upgrade_request(caller.user_id, request_id)
        if retry_at is not None:
            return RateLimited(self.settings.PPS_USER_UPGRADES_PER_HOUR, retry_at,
                               self.clock.now())
        version, downgrade = None, False
        if isinstance(cmd, grammar.Upgrade):
            version, downgrade = cmd.version, cmd.allow_downgrade
        try:
            # The worker count is read beside the creation (one round trip less to wait for);
            # it is shown only for a job this request created.
            (job, created), alive = await asyncio.gather(self.service.create_job(UpgradeRequest(
                cluster=cluster.name,
                requester=caller.user_id,
                channel=channel,
                target=version,
                at=at,
                dry_run=cmd.dry_run,
                allow_downgrade=downgrade,
                idempotency_key=idem,
                procedure=procedure,
            )), self.service.workers_alive())
        except EngineError:
            await self.service.uncount_upgrade_request(caller.user_id, request_id)
            raise
        # A queued job with no worker running would wait silently: say so in the ack.
        workers = alive if created else None
        return Queued(job, created, channel, workers)

    def _outside_window(self, cluster: Cluster, at: float) -> Refused | None:
        """`--at` must fall inside the cluster's maintenance window, when it has one."""
        window = cluster.window
        if window is None or window.contains(at):
            return None
        opens = window.local(window.next_opening(self.clock.now()))
        return Refused(f"The start time {window.local(at)} is outside the maintenance window "
                       f"of {cluster.name} ({window.text}); nothing was scheduled. The window "
                       f"next opens {opens}: give an `--at` time inside it.")

    async def _idempotency_key(
        self, cmd: grammar.Upgrade | grammar.Rollback, caller: Caller
    ) -> str | None:
        """Same delivery → same job: the trigger id plus who asked what, where, first seen
        within `REDELIVERY_SECONDS`. A client that reuses one trigger id for every command
        (some do) still gets a new job for a new command, or for the same one later."""
        if not caller.trigger_id:
            return None
        raw = "\x1f".join((caller.trigger_id, caller.user_id, caller.channel_id, repr(cmd)))
        digest = hashlib.sha256(raw.encode()).hexdigest()[:24]
        first_seen = await self.service.first_seen(f"command:{digest}", REDELIVERY_SECONDS)
        return f"slack-trigger:{digest}:{first_seen}"

    async def _report(self, cmd: grammar.Report, caller: Caller) -> Reply:
        job = await self.service.find(cmd.job_id)
        if job is None:
            return Refused(f"No job `{cmd.job_id}` (unknown, or its records expired).")
        if self.reports is None:
            return Refused("Change records cannot be posted from here.")
        await self.reports(job, caller)
        return ReportQueued(job)

    async def _status(self, target: str) -> Reply:
        cluster = self.inventory.cluster(target)
        if cluster is not None:
            active = await self.service.active_for_cluster(cluster.name)
            last = None
            if active is None:
                recent = await self.service.history(cluster.name, limit=1)
                last = recent[0] if recent else None
            return ClusterReport(cluster, active, last)
        job = await self.service.find(target) if grammar.JOB_ID_RE.match(target) else None
        if job is None:
            return Refused(f"No job or cluster named `{target}`.")
        return JobReport(job)
