"""The `/pps` grammar as a pure parser: command text in, a `Command` or a `ParseError` out.

    upgrade <cluster> [<version>] [--at <time>] [--dry-run] [--allow-downgrade]
    status [<job-id> | <cluster>]
    list
    abort <job-id>
    history [<cluster>]
    clusters
    rollback <cluster> [--at <time>] [--dry-run]
    report <job-id>
    help

No I/O here: whether a cluster or a job exists is the command runner's question.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from jobs.appliance.versions import VersionError, parse_version

USAGE_LINES: tuple[str, ...] = (
    "/pps upgrade <cluster> [<version>] [--at <time>] [--dry-run] [--allow-downgrade]",
    "/pps status [<job-id> | <cluster>]",
    "/pps list",
    "/pps abort <job-id>",
    "/pps history [<cluster>]",
    "/pps clusters",
    "/pps rollback <cluster> [--at <time>] [--dry-run]",
    "/pps report <job-id>",
    "/pps help",
)

# Same shapes as the inventory's cluster names and DESIGN §4.1's job ids.
CLUSTER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
JOB_ID_RE = re.compile(r"^[A-Za-z0-9-]{1,24}$")
MAX_TEXT = 500  # longer command text is refused before any parsing


@dataclass(frozen=True)
class Upgrade:
    cluster: str
    version: str | None = None
    at: str | None = None  # raw `--at` text; resolved against the clock and window zone later
    dry_run: bool = False
    allow_downgrade: bool = False


@dataclass(frozen=True)
class Rollback:
    cluster: str
    at: str | None = None  # raw `--at` text, as for `Upgrade`
    dry_run: bool = False


@dataclass(frozen=True)
class Status:
    target: str | None = None  # a job id or a cluster name; None: active and scheduled jobs


@dataclass(frozen=True)
class ListJobs:
    pass


@dataclass(frozen=True)
class Abort:
    job_id: str


@dataclass(frozen=True)
class History:
    cluster: str | None = None


@dataclass(frozen=True)
class Clusters:
    pass


@dataclass(frozen=True)
class Report:
    job_id: str


@dataclass(frozen=True)
class Help:
    pass


Command = Upgrade | Status | ListJobs | Abort | History | Clusters | Rollback | Report | Help


class ParseError(ValueError):
    """Malformed input; `problem` quotes the user's text raw (the renderer escapes it)."""

    def __init__(self, problem: str, usage: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.usage = usage  # the one usage line that applies, when known


def _usage(verb: str) -> str:
    return next(u for u in USAGE_LINES if u.split()[1] == verb)


def _cluster(token: str, verb: str) -> str:
    if not CLUSTER_RE.match(token):
        raise ParseError(f"`{token}` is not a cluster name.", _usage(verb))
    return token


def _job_id(token: str, verb: str) -> str:
    if not JOB_ID_RE.match(token):
        raise ParseError(f"`{token}` is not a job id.", _usage(verb))
    return token


def _no_more(rest: list[str], verb: str) -> None:
    if rest:
        raise ParseError(f"Unexpected `{' '.join(rest)}`.", _usage(verb))


def usage_of(verb: str) -> str:
    """The usage line of one verb (`upgrade`, `rollback`, ...)."""
    return _usage(verb)


def _parse_upgrade(args: list[str], verb: str = "upgrade") -> Upgrade:
    """`upgrade`'s words (also read for `rollback`, which then refuses what it lacks)."""
    usage = _usage(verb)
    positional: list[str] = []
    at: str | None = None
    dry_run = allow_downgrade = False
    i = 0
    while i < len(args):
        a = args[i]
        low = a.lower()
        if low in ("--dry-run", "--dryrun"):
            dry_run = True
        elif low == "--allow-downgrade":
            allow_downgrade = True
        elif low == "--at" or low.startswith("--at="):
            if at is not None:
                raise ParseError("`--at` given twice.", usage)
            if low.startswith("--at="):
                at = a[5:]
            elif i + 1 < len(args) and not args[i + 1].startswith("--"):
                i += 1
                at = args[i]
            else:
                raise ParseError("`--at` needs a time (HH:MM or ISO-8601).", usage)
            if not at:
                raise ParseError("`--at` needs a time (HH:MM or ISO-8601).", usage)
        elif a.startswith("-"):
            raise ParseError(f"Unknown option `{a}`.", usage)
        else:
            positional.append(a)
        i += 1
    if not positional:
        raise ParseError(f"Which cluster? `{verb}` needs a cluster name.", usage)
    if len(positional) > 2:
        raise ParseError(f"Unexpected `{' '.join(positional[2:])}`.", usage)
    cluster = _cluster(positional[0], verb)
    version = positional[1] if len(positional) == 2 else None
    if version is not None and verb == "upgrade":
        try:
            parse_version(version)
        except VersionError:
            raise ParseError(f"`{version}` is not a PPS version (like 9.1R18).", usage) from None
    return Upgrade(cluster, version, at, dry_run, allow_downgrade)


def _parse_rollback(args: list[str]) -> Rollback:
    """`rollback <cluster> [--at <time>] [--dry-run]`: no version, the partitions decide."""
    usage = _usage("rollback")
    parsed = _parse_upgrade(args, verb="rollback")  # the same options, minus two
    if parsed.allow_downgrade:
        raise ParseError("`--allow-downgrade` is for `upgrade`; a rollback needs none.", usage)
    if parsed.version is not None:
        raise ParseError(
            f"Unexpected `{parsed.version}`: a rollback goes to the build on the rollback "
            "partitions.",
            usage,
        )
    return Rollback(parsed.cluster, parsed.at, parsed.dry_run)


def unescape(text: str) -> str:
    """Undo Slack's escaping of `&`, `<`, `>` in command text (replies escape again)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def parse(text: str) -> Command:
    """Parse the text after `/pps`; raise `ParseError` on anything else."""
    text = unescape(text)
    if len(text) > MAX_TEXT:
        raise ParseError(f"That command is too long ({len(text)} characters).")
    # Slack may send non-breaking spaces from copy-pasted text; split on any whitespace.
    words = text.split()
    if not words:
        return Help()
    verb, args = words[0].lower(), words[1:]
    if verb in ("help", "-h", "--help", "?"):
        return Help()
    if verb == "upgrade":
        return _parse_upgrade(args)
    if verb == "status":
        if not args:
            return Status()
        _no_more(args[1:], "status")
        tok = args[0]
        if not (CLUSTER_RE.match(tok) or JOB_ID_RE.match(tok)):
            raise ParseError(f"`{tok}` is neither a job id nor a cluster name.", _usage("status"))
        return Status(tok)
    if verb == "list":
        _no_more(args, "list")
        return ListJobs()
    if verb == "abort":
        if not args:
            raise ParseError("Which job? `abort` needs a job id.", _usage("abort"))
        _no_more(args[1:], "abort")
        return Abort(_job_id(args[0], "abort"))
    if verb == "history":
        if not args:
            return History()
        _no_more(args[1:], "history")
        return History(_cluster(args[0], "history"))
    if verb == "clusters":
        _no_more(args, "clusters")
        return Clusters()
    if verb == "rollback":
        return _parse_rollback(args)
    if verb == "report":
        if not args:
            raise ParseError("Which job? `report` needs a job id.", _usage("report"))
        _no_more(args[1:], "report")
        return Report(_job_id(args[0], "report"))
    raise ParseError(f"Unknown command `{words[0]}`.")
