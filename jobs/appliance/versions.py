"""PPS firmware version parsing and ordering: `9.1R18`, `9.1R17.1 (build 28197)`, `22.7R2.3`."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

_RE = re.compile(
    r"^\s*(?P<major>\d+)\.(?P<minor>\d+)\s*R\s*(?P<release>\d+)(?:\.(?P<patch>\d+))?"
    r"(?:\s*\(\s*build\s+(?P<build>\d+)\s*\))?\s*$",
    re.IGNORECASE,
)


class VersionError(ValueError):
    """A string that is not a PPS version."""


@dataclass(frozen=True, order=True)
class Version:
    """Equal and ordered on (major, minor, release, patch); the build number is kept apart.

    `9.1R18` and `9.1R18 (build 29865)` are the same release; `matches` checks builds.
    """

    major: int
    minor: int
    release: int
    patch: int = 0
    # Not compared: a catalogue version usually has no build and must still sort with
    # running builds (None < int would raise).
    build: int | None = field(default=None, compare=False)

    @property
    def key(self) -> tuple[int, int, int, int]:
        return (self.major, self.minor, self.release, self.patch)

    def __str__(self) -> str:
        s = f"{self.major}.{self.minor}R{self.release}"
        if self.patch:
            s += f".{self.patch}"
        if self.build is not None:
            s += f" (build {self.build})"
        return s


def parse_version(text: str) -> Version:
    """Parse a catalogue version or a running build string."""
    return _parse(text or "")


@functools.lru_cache(maxsize=4096)
def _parse(text: str) -> Version:
    # Cached: a fleet view parses the same few build strings for every cluster on every
    # `/pps clusters` and Home render (12% of the bot's busy time under load, py-spy).
    # Version is frozen; a failure is not cached and raises again.
    m = _RE.match(text)
    if not m:
        raise VersionError(f"not a PPS version: {text!r}")
    return Version(
        major=int(m["major"]),
        minor=int(m["minor"]),
        release=int(m["release"]),
        patch=int(m["patch"] or 0),
        build=int(m["build"]) if m["build"] else None,
    )


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as version `a` is older, equal (ignoring builds) or newer than `b`."""
    ka, kb = parse_version(a).key, parse_version(b).key
    return (ka > kb) - (ka < kb)


def compare_target(target: str, running: str) -> int:
    """`compare`, but 0 only when the running build `matches` the target (DESIGN §4.6).

    Same release: a build number on both sides orders them (a re-spin of `9.1R18` with a
    higher build is an upgrade); without a build on either side they are the same.
    """
    order = compare(target, running)
    if order:
        return order
    t, r = parse_version(target).build, parse_version(running).build
    if t is None or r is None:
        return 0
    return (t > r) - (t < r)


def newer(a: str, b: str) -> bool:
    """True when version `a` sorts after `b`; within one release, the higher build number."""
    va, vb = parse_version(a), parse_version(b)
    return (va.key, va.build or -1) > (vb.key, vb.build or -1)


def matches(catalogue: str, running: str) -> bool:
    """True when a running build is the catalogue version (DESIGN §4.6).

    Compares major.minor, release and patch; a build number in the catalogue must match too.
    """
    try:
        c, r = parse_version(catalogue), parse_version(running)
    except VersionError:
        return False
    if c.key != r.key:
        return False
    return c.build is None or c.build == r.build
