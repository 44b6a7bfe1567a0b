"""What a command or a click produced, as data; the bot renders it (bot/render/commands.py).

Handlers decide and never format Slack text; strings marked "raw" hold user input and
must be escaped by the renderer. Engine and authorization messages are the bot's own
words (with mentions and inline code) and are rendered through the mention-safe escaper.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobs.config.inventory import Cluster
from jobs.fleet.view import FleetFacts
from jobs.rules.model import Job


@dataclass(frozen=True)
class Usage:
    """Unknown or malformed input; `problem` quotes raw user text."""

    problem: str | None = None
    usage: str | None = None


@dataclass(frozen=True)
class HelpText:
    pass


@dataclass(frozen=True)
class Refused:
    """The request was refused and nothing changed; `message` is the bot's own words."""

    message: str


@dataclass(frozen=True)
class RateLimited:
    """The user reached PPS_USER_UPGRADES_PER_HOUR; nothing was created."""

    limit: int
    retry_at: float  # epoch seconds: when the oldest counted request leaves the window
    now: float


@dataclass(frozen=True)
class Queued:
    """`upgrade` created (or, for a repeated trigger id, found) a job."""

    job: Job
    created: bool
    channel: str
    workers: int | None = None  # workers running when it was created (None: not asked)


@dataclass(frozen=True)
class JobReport:
    job: Job


@dataclass(frozen=True)
class ClusterReport:
    cluster: Cluster
    active: Job | None
    last: Job | None


@dataclass(frozen=True)
class JobList:
    title: str
    jobs: list[Job]
    empty: str
    workers: int | None = None  # workers running (None: not asked)


@dataclass(frozen=True)
class ClusterList:
    """`/pps clusters`: the fleet at a glance (the facts the App Home tab shows)."""

    fleet: FleetFacts


@dataclass(frozen=True)
class Aborted:
    job: Job


@dataclass(frozen=True)
class ReportQueued:
    """`report`: the change record is being posted in the job's thread, as a file."""

    job: Job


@dataclass(frozen=True)
class Failed:
    """Something unexpected broke (Redis down, a bug): say so without a traceback."""

    ref: str


Reply = (
    Usage | HelpText | Refused | RateLimited | Queued | JobReport | ClusterReport | JobList
    | ClusterList | Aborted | ReportQueued | Failed
)
