"""`--at` times: ISO-8601 or `HH:MM` (next occurrence), in a given zone. Pure functions."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta, tzinfo

_HHMM = re.compile(r"^(\d{1,2}):(\d{2})$")
MAX_AHEAD = timedelta(days=31)


class AtError(ValueError):
    """An `--at` value that is not a usable start time; the message is for the user."""


def resolve_at(text: str, now: float, tz: tzinfo | None = None) -> float:
    """Epoch seconds for `text` (`HH:MM` = next occurrence after `now`; naive ISO in `tz`)."""
    zone = tz or UTC
    m = _HHMM.match(text.strip())
    current = datetime.fromtimestamp(now, zone)
    if m:
        hh, mm = int(m[1]), int(m[2])
        if hh > 23 or mm > 59:
            raise AtError(f"`{text}` is not a time of day (00:00-23:59).")
        day = current.date()
        when = datetime.combine(day, time(hh, mm), zone)
        if when.timestamp() <= now:
            when = datetime.combine(day + timedelta(days=1), time(hh, mm), zone)
        return when.timestamp()
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise AtError(
            f"`{text}` is not a time: use HH:MM or ISO-8601 like 2030-01-05T01:30+01:00."
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    epoch = parsed.timestamp()
    if epoch <= now:
        raise AtError(f"`{text}` is in the past.")
    if epoch - now > MAX_AHEAD.total_seconds():
        raise AtError(f"`{text}` is more than {MAX_AHEAD.days} days ahead.")
    return epoch
