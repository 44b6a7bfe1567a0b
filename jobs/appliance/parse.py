"""Pure parsing of PPS REST answers (PPS-API.md) into the `jobs.appliance.protocol` value types.

No I/O here: the client (`jobs/appliance/client.py`) fetches, these functions read. Each raises
`AnswerError` with a short, secret-free reason when an answer does not have the documented
shape; the client turns it into `Rejected`.
"""

from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass
from typing import Any

from jobs.appliance.protocol import (
    STATUS_DISABLED,
    STATUS_ENABLED,
    STATUS_LEADER,
    STATUS_TRANSITIONING,
    STATUS_UNREACHABLE,
    MemberStatus,
    Overview,
    SystemInfo,
)

# The console's status words by a spelling-neutral key: an appliance that sends "LEADER" or
# "Enabled,Transitioning" means the same thing, and the in-cluster test compares exactly.
_STATUS_WORDS = {
    "".join(w.split()).casefold(): w
    for w in (
        STATUS_LEADER,
        STATUS_ENABLED,
        STATUS_TRANSITIONING,
        STATUS_UNREACHABLE,
        STATUS_DISABLED,
    )
}


class AnswerError(ValueError):
    """The appliance answered something that is not the documented shape."""


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise AnswerError(f"unexpected answer: {what} is not an object")
    return value


def _int(value: Any, what: str) -> int:
    # Some builds send numbers as strings ("412"); both are accepted.
    if isinstance(value, bool):
        raise AnswerError(f"unexpected answer: {what} is not a number")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise AnswerError(f"unexpected answer: {what} is not a number") from None


def _bool(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise AnswerError(f"unexpected answer: {what} is not true/false")


def parse_api_key(data: Any) -> str:
    """`{"api_key": "..."}` from `realm_auth` or the legacy `auth`."""
    key = _mapping(data, "auth answer").get("api_key")
    if not isinstance(key, str) or not key:
        raise AnswerError("unexpected answer: no api_key in the auth answer")
    return key


def parse_system_info(data: Any) -> SystemInfo:
    """`GET system/system-information` → host name, running build, rollback build."""
    root = _mapping(data, "system-information answer")
    info = _mapping(root.get("system-information", {}), "system-information")
    software = _mapping(
        _mapping(root.get("software-inventory"), "software-inventory").get("software"),
        "software-inventory.software",
    )
    build = software.get("build")
    if not isinstance(build, str) or not build:
        raise AnswerError("unexpected answer: no software-inventory.software.build")
    rollback = root.get("rollback-partition-information")
    rollback_build = rollback.get("build") if isinstance(rollback, dict) else None
    if not isinstance(rollback_build, str) or not rollback_build:
        rollback_build = None
    return SystemInfo(
        host_name=str(info.get("host-name") or ""), build=build, rollback_build=rollback_build
    )


def status_word(value: Any) -> str:
    """A `statuscode` in the console's spelling (case and spaces ignored); others as sent."""
    text = " ".join(str(value or "").split())
    return _STATUS_WORDS.get("".join(text.split()).casefold(), text)


def uptime_seconds(value: Any) -> float:
    """`{"days", "hours", "minutes", "seconds"}` → seconds (missing parts count as 0).

    A plain number (or numeric string) is taken as seconds: not the documented shape, but
    unambiguous, and refusing it would hide the whole cluster status.
    """
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except ValueError:
            seconds = -1.0
        if not (math.isfinite(seconds) and seconds >= 0):
            raise AnswerError("unexpected answer: uptime is not a duration")
        return seconds
    up = _mapping(value, "uptime")
    factors = {"days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}
    return float(sum(_int(up.get(k, 0), f"uptime.{k}") * f for k, f in factors.items()))


def parse_overview(data: Any) -> Overview:
    """`GET system/status/overview` → members (empty when standalone) and uptime."""
    root = _mapping(data, "overview answer")
    raw_members = root.get("cluster-member-status") or []
    if not isinstance(raw_members, list):
        raise AnswerError("unexpected answer: cluster-member-status is not a list")
    members = []
    for i, raw in enumerate(raw_members):
        m = _mapping(raw, f"cluster-member-status[{i}]")
        members.append(
            MemberStatus(
                name=str(m.get("name") or ""),
                enabled=_bool(m.get("enabled", False), f"cluster-member-status[{i}].enabled"),
                status=status_word(m.get("statuscode")),
                notes=str(m.get("notes") or ""),
            )
        )
    uptime = uptime_seconds(root["uptime"]) if "uptime" in root else 0.0
    return Overview(members=tuple(members), uptime_seconds=uptime)


@dataclass(frozen=True)
class UsersPage:
    """One page of `GET system/active-users`."""

    returned: int  # records on this page
    total: int | None  # total-matched-record-number, when given
    login_permission: bool
    is_last: bool


def parse_active_users_page(data: Any) -> UsersPage:
    """One `active-users` page: record count, total, login permission, last-page flag."""
    root = _mapping(_mapping(data, "active-users answer").get("active-users"), "active-users")
    records_box = root.get("active-user-records") or {}
    records = _mapping(records_box, "active-user-records").get("active-user-record") or []
    if isinstance(records, dict):  # a single record sometimes comes unwrapped
        records = [records]
    if not isinstance(records, list):
        raise AnswerError("unexpected answer: active-user-record is not a list")
    if "user-login-permission" not in root:
        raise AnswerError("unexpected answer: no user-login-permission")
    total = root.get("total-matched-record-number")
    returned = root.get("total-returned-record-number")
    return UsersPage(
        returned=_int(returned, "total-returned-record-number")
        if returned is not None
        else len(records),
        total=_int(total, "total-matched-record-number") if total is not None else None,
        login_permission=_bool(root["user-login-permission"], "user-login-permission"),
        is_last=_bool(root.get("is-last-record", False), "is-last-record"),
    )


_WHITESPACE = b" \t\r\n\v\f"


def decode_export(text: bytes | str) -> bytes:
    """Base64 export text (line breaks allowed) → bytes; empty or not base64 is refused.

    Works on the bytes as read (one copy without the line breaks, then the decoded data):
    an export may be tens of MiB.
    """
    raw = text.encode("utf-8", "replace") if isinstance(text, str) else text
    compact = raw.translate(None, _WHITESPACE)
    if not compact:
        raise AnswerError("empty configuration export")
    try:
        data = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise AnswerError("configuration export is not base64") from None
    if not data:
        raise AnswerError("empty configuration export")
    return data


def parse_healthcheck(text: str) -> dict[str, str]:
    """`KEY=value;` lines of healthcheck.cgi → a dict."""
    out: dict[str, str] = {}
    for raw in text.replace(";", "\n").splitlines():
        key, sep, value = raw.strip().partition("=")
        if sep and key:
            out[key.strip()] = value.strip()
    return out
