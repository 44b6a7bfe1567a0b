"""Table tests for jobs/appliance/versions.py: parsing, ordering, DESIGN §4.6 matching."""

from __future__ import annotations

import pytest

from jobs.appliance.versions import Version, VersionError, compare, matches, parse_version


@pytest.mark.parametrize(
    ("text", "expected", "shown"),
    [
        ("9.1R18", Version(9, 1, 18, 0, None), "9.1R18"),
        ("9.1R17.1 (build 28197)", Version(9, 1, 17, 1, 28197), "9.1R17.1 (build 28197)"),
        ("22.7R2.3", Version(22, 7, 2, 3, None), "22.7R2.3"),
        ("9.1R18 (build 29865)", Version(9, 1, 18, 0, 29865), "9.1R18 (build 29865)"),
        ("  9.1r18 (Build 29865) ", Version(9, 1, 18, 0, 29865), "9.1R18 (build 29865)"),
        ("22.7R2.1 (build 1485)", Version(22, 7, 2, 1, 1485), "22.7R2.1 (build 1485)"),
    ],
)
def test_parse(text: str, expected: Version, shown: str) -> None:
    v = parse_version(text)
    assert (v.major, v.minor, v.release, v.patch, v.build) == (
        expected.major,
        expected.minor,
        expected.release,
        expected.patch,
        expected.build,
    )
    assert str(v) == shown


@pytest.mark.parametrize(
    "text", ["", "9.1", "R18", "9.1R", "9.1R18 build 5", "9.1R18.x", "v9.1R18"]
)
def test_parse_refuses(text: str) -> None:
    with pytest.raises(VersionError, match="not a PPS version"):
        parse_version(text)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("9.1R18", "9.1R17", 1),
        ("9.1R17", "9.1R18", -1),
        ("9.1R17.1", "9.1R17", 1),
        ("9.1R17.1 (build 28197)", "9.1R18", -1),
        ("22.7R2.3", "9.1R18", 1),
        ("22.7R2.3", "22.7R2.10", -1),
        ("9.1R18", "9.1R18 (build 29865)", 0),
        ("9.1R9", "9.1R10", -1),  # numeric, not lexical
    ],
)
def test_compare(a: str, b: str, expected: int) -> None:
    assert compare(a, b) == expected
    assert compare(b, a) == -expected


def test_versions_sort_with_and_without_builds() -> None:
    texts = ["22.7R2.3", "9.1R18 (build 29865)", "9.1R17.1 (build 28197)", "9.1R17", "9.1R18.1"]
    ordered = [str(v) for v in sorted(parse_version(t) for t in texts)]
    assert ordered == [
        "9.1R17",
        "9.1R17.1 (build 28197)",
        "9.1R18 (build 29865)",
        "9.1R18.1",
        "22.7R2.3",
    ]


@pytest.mark.parametrize(
    ("catalogue", "running", "expected"),
    [
        ("9.1R18", "9.1R18 (build 29865)", True),
        ("9.1R18 (build 29865)", "9.1R18 (build 29865)", True),
        ("9.1R18 (build 29865)", "9.1R18 (build 29866)", False),
        ("9.1R18 (build 29865)", "9.1R18", False),
        ("9.1R18", "9.1R18.1 (build 30001)", False),
        ("9.1R17.1", "9.1R17.1 (build 28197)", True),
        ("9.1R17", "9.1R17.1 (build 28197)", False),
        ("22.7R2.3", "22.7R2.3 (build 3431)", True),
        ("22.7R2.3", "garbage", False),
        ("garbage", "22.7R2.3", False),
    ],
)
def test_matches(catalogue: str, running: str, expected: bool) -> None:
    assert matches(catalogue, running) is expected
