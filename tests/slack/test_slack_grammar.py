"""The `/pps` grammar (pure parser) and `--at` resolution, as tables."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from handlers.at_time import AtError, resolve_at
from handlers.grammar import (
    Abort,
    Clusters,
    Command,
    Help,
    History,
    ListJobs,
    ParseError,
    Status,
    Upgrade,
    parse,
)

OK: list[tuple[str, Command]] = [
    ("", Help()),
    ("help", Help()),
    ("HELP", Help()),
    ("upgrade cluster-east", Upgrade("cluster-east")),
    ("upgrade cluster-east 9.1R18", Upgrade("cluster-east", "9.1R18")),
    ("upgrade cluster-east 9.1R17.1", Upgrade("cluster-east", "9.1R17.1")),
    ("upgrade lab --dry-run", Upgrade("lab", dry_run=True)),
    ("upgrade lab 9.1R17 --allow-downgrade", Upgrade("lab", "9.1R17", allow_downgrade=True)),
    ("upgrade lab --at 01:30", Upgrade("lab", at="01:30")),
    ("upgrade lab --at=2030-01-05T01:30+01:00", Upgrade("lab", at="2030-01-05T01:30+01:00")),
    ("upgrade lab 9.1R18 --at 23:00 --dry-run --allow-downgrade",
     Upgrade("lab", "9.1R18", "23:00", True, True)),
    ("  upgrade\u00a0lab  ", Upgrade("lab")),
    ("status", Status()),
    ("status J-0042", Status("J-0042")),
    ("status cluster-east", Status("cluster-east")),
    ("list", ListJobs()),
    ("abort J-0042", Abort("J-0042")),
    ("history", History()),
    ("history lab", History("lab")),
    ("clusters", Clusters()),
]

BAD: list[tuple[str, str]] = [
    ("frobnicate", "Unknown command `frobnicate`"),
    ("upgrade", "needs a cluster name"),
    ("upgrade <!channel>", "`<!channel>` is not a cluster name"),
    ("upgrade &lt;!channel&gt;", "`<!channel>` is not a cluster name"),  # as Slack sends it
    ("upgrade lab nine", "`nine` is not a PPS version"),
    ("upgrade lab 9.1R18 extra", "Unexpected `extra`"),
    ("upgrade lab --at", "`--at` needs a time"),
    ("upgrade lab --at --dry-run", "`--at` needs a time"),
    ("upgrade lab --at 1:00 --at 2:00", "`--at` given twice"),
    ("upgrade lab --force", "Unknown option `--force`"),
    ("status a b", "Unexpected `b`"),
    ("status <@U123>", "neither a job id nor a cluster name"),
    ("list all", "Unexpected `all`"),
    ("abort", "needs a job id"),
    ("abort J_1!", "is not a job id"),
    ("abort " + "J" * 25, "is not a job id"),
    ("history a b", "Unexpected `b`"),
    ("clusters now", "Unexpected `now`"),
    ("upgrade " + "x" * 600, "too long"),
]


@pytest.mark.parametrize(("text", "expected"), OK)
def test_slack_grammar_parses(text: str, expected: Command) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(("text", "problem"), BAD)
def test_slack_grammar_refuses(text: str, problem: str) -> None:
    with pytest.raises(ParseError) as exc:
        parse(text)
    assert problem in exc.value.problem


def test_slack_grammar_usage_line_names_the_verb() -> None:
    with pytest.raises(ParseError) as exc:
        parse("abort")
    assert exc.value.usage == "/pps abort <job-id>"


NOW = datetime(2030, 1, 5, 12, 0, tzinfo=UTC).timestamp()  # a Saturday, 12:00 UTC
BERLIN = ZoneInfo("Europe/Berlin")  # UTC+1 in January


@pytest.mark.parametrize(
    ("text", "tz", "expected"),
    [
        ("13:30", None, datetime(2030, 1, 5, 13, 30, tzinfo=UTC)),
        ("11:00", None, datetime(2030, 1, 6, 11, 0, tzinfo=UTC)),  # passed today: tomorrow
        ("12:00", None, datetime(2030, 1, 6, 12, 0, tzinfo=UTC)),  # now is not "next"
        ("14:00", BERLIN, datetime(2030, 1, 5, 13, 0, tzinfo=UTC)),
        ("12:30", BERLIN, datetime(2030, 1, 6, 11, 30, tzinfo=UTC)),  # 13:00 Berlin now
        ("2030-01-05T18:00", None, datetime(2030, 1, 5, 18, 0, tzinfo=UTC)),
        ("2030-01-05T18:00", BERLIN, datetime(2030, 1, 5, 17, 0, tzinfo=UTC)),
        ("2030-01-05T18:00+02:00", BERLIN, datetime(2030, 1, 5, 16, 0, tzinfo=UTC)),
        ("2030-01-05T18:00Z", BERLIN, datetime(2030, 1, 5, 18, 0, tzinfo=UTC)),
    ],
)
def test_slack_at_resolves(text: str, tz: ZoneInfo | None, expected: datetime) -> None:
    assert resolve_at(text, NOW, tz) == expected.timestamp()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("25:00", "not a time of day"),
        ("12:61", "not a time of day"),
        ("tomorrow", "is not a time"),
        ("2030-01-05T11:00", "in the past"),
        ("2031-01-05T11:00", "more than 31 days ahead"),
    ],
)
def test_slack_at_refuses(text: str, problem: str) -> None:
    with pytest.raises(AtError) as exc:
        resolve_at(text, NOW, None)
    assert problem in str(exc.value)
