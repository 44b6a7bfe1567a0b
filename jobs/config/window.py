"""Weekly maintenance windows of the inventory: `Sat 01:00-05:00 Europe/Berlin`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WINDOW_RE = re.compile(
    r"^\s*(?:(?P<days>[A-Za-z]{3}(?:\s*[-,]\s*[A-Za-z]{3})*)\s+)?"
    r"(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})(?:\s+(?P<tz>\S+))?\s*$"
)


@dataclass(frozen=True)
class Window:
    """A weekly maintenance window, e.g. `Sat 01:00-05:00 Europe/Berlin`."""

    text: str
    days: frozenset[int]  # 0 = Monday
    start: time
    end: time
    tz: ZoneInfo

    def contains(self, epoch: float) -> bool:
        """Is `epoch` inside the window (windows may cross midnight)?"""
        t = datetime.fromtimestamp(epoch, self.tz)
        now = t.time()
        if self.start <= self.end:
            return t.weekday() in self.days and self.start <= now < self.end
        if now >= self.start:
            return t.weekday() in self.days
        return (t.weekday() - 1) % 7 in self.days and now < self.end

    def next_opening(self, epoch: float) -> float:
        """When the window next opens after `epoch` (epoch seconds)."""
        day = datetime.fromtimestamp(epoch, self.tz).date()
        for ahead in range(8):
            d = day + timedelta(days=ahead)
            start = datetime.combine(d, self.start, self.tz).timestamp()
            if d.weekday() in self.days and start > epoch:
                return start
        raise AssertionError("a weekly window opens within 8 days")  # pragma: no cover

    def local(self, epoch: float) -> str:
        """`epoch` in the window's zone, e.g. `Sat 2030-01-05 01:00 CET`."""
        return datetime.fromtimestamp(epoch, self.tz).strftime("%a %Y-%m-%d %H:%M %Z")


def parse_window(text: str) -> Window:
    """Parse `"[Days ]HH:MM-HH:MM[ Zone]"`; days like `Sat`, `Mon-Fri`, `Sat,Sun`."""
    m = _WINDOW_RE.match(text)
    if not m:
        raise ValueError(f"window {text!r}: expected like 'Sat 01:00-05:00 Europe/Berlin'")
    days: set[int] = set()
    if m["days"]:
        for part in re.split(r"\s*,\s*", m["days"].lower()):
            ends = [p.strip() for p in part.split("-")]
            if any(e not in _DAYS for e in ends):
                raise ValueError(f"window {text!r}: unknown day in {part!r}")
            a, b = _DAYS.index(ends[0]), _DAYS.index(ends[-1])
            i = a
            while True:
                days.add(i)
                if i == b:
                    break
                i = (i + 1) % 7
    else:
        days = set(range(7))
    try:
        start = time.fromisoformat(m["start"].zfill(5))
        end = time.fromisoformat(m["end"].zfill(5))
    except ValueError as exc:
        raise ValueError(f"window {text!r}: bad time ({exc})") from None
    if start == end:
        raise ValueError(f"window {text!r}: start and end are the same time")
    try:
        tz = ZoneInfo(m["tz"] or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"window {text!r}: unknown time zone {m['tz']!r}") from None
    return Window(text=text, days=frozenset(days), start=start, end=end, tz=tz)
