"""The configuration diff of the drift check: two snapshot trees compared by path. Pure.

Objects are compared key by key and lists item by item (by `name` when every item has a
distinct one, see `jobs.appliance.config_tree`), down to the leaves. An object or list that
is only on one side is one change at its own path (a removed role is one `-` line, not one
per setting). Subtrees that either snapshot left out are not compared, and are named.
Values under keys that look secret (passwords, shared secrets, keys) are never shown.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from jobs.appliance.config_tree import children

FIRST_LINES = 20  # paths shown in the summary; the stored diff has them all
HIDDEN = "(hidden)"
# A key ending in one of these words (then maybe `-encrypted` and the like) holds a secret;
# `password-options` (a policy) does not.
_SECRET = re.compile(
    r"(^|-)(password|passphrase|secret|private-?key|psk|token|api-?key|community)"
    r"(-(encrypted|cleartext|hash|hashed|value))?$",
    re.IGNORECASE,
)


def is_secret(key: str) -> bool:
    """A key whose value is never shown (the comparison still sees it)."""
    return bool(_SECRET.search(key.replace("_", "-")))


def masked(value: Any) -> Any:
    """`value` with every value under a secret-looking key replaced by `HIDDEN`."""
    if isinstance(value, dict):
        return {k: HIDDEN if is_secret(str(k)) else masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v) for v in value]
    return value


@dataclass(frozen=True)
class Change:
    """One difference: `+` added, `-` removed, `~` changed (values already masked)."""

    op: str
    path: str
    before: Any = None
    after: Any = None

    def as_dict(self) -> dict[str, Any]:
        if self.op == "+":
            return {"path": self.path, "value": self.after}
        if self.op == "-":
            return {"path": self.path, "value": self.before}
        return {"path": self.path, "before": self.before, "after": self.after}


@dataclass
class ConfigDiff:
    """Everything that differs, plus how much was compared and what was not."""

    added: list[Change] = field(default_factory=list)
    removed: list[Change] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)
    compared: int = 0  # leaf values present on both sides and compared
    not_compared: list[str] = field(default_factory=list)

    @property
    def unchanged(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def changes(self) -> list[Change]:
        """Every change, ordered by path (a removal before an addition at the same path)."""
        order = {"-": 0, "~": 1, "+": 2}
        return sorted(
            [*self.removed, *self.changed, *self.added], key=lambda c: (c.path, order[c.op])
        )

    def to_json(self) -> dict[str, Any]:
        """The stored form (`config-diff.json` without its header)."""
        return {
            "status": "unchanged" if self.unchanged else "changed",
            "counts": {
                "added": len(self.added),
                "removed": len(self.removed),
                "changed": len(self.changed),
            },
            "compared": self.compared,
            "added": [c.as_dict() for c in self.added],
            "removed": [c.as_dict() for c in self.removed],
            "changed": [c.as_dict() for c in self.changed],
            "not_compared": list(self.not_compared),
        }


def diff_trees(before: Any, after: Any, skip: Iterable[str] = ()) -> ConfigDiff:
    """Compare two trees; paths in `skip` (subtrees a snapshot left out) are not compared."""
    out = ConfigDiff()
    _compare(before, after, "", frozenset(skip), out, secret=False)
    for group in (out.added, out.removed, out.changed):
        group.sort(key=lambda c: c.path)
    out.not_compared.sort()
    return out


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same JSON type (`true` is not `1`, `1` is not `1.0`)."""
    return type(a) is type(b) and a == b


def _compare(
    before: Any, after: Any, path: str, skip: frozenset[str], out: ConfigDiff, *, secret: bool
) -> None:
    both_dicts = isinstance(before, dict) and isinstance(after, dict)
    if not (both_dicts or (isinstance(before, list) and isinstance(after, list))):
        if _same(before, after):
            out.compared += 1
        else:
            shown = (HIDDEN, HIDDEN) if secret else (masked(before), masked(after))
            out.changed.append(Change("~", path or "/", *shown))
        return
    b = {seg: v for seg, _, v in children(before)}
    a = {seg: v for seg, _, v in children(after)}
    for seg in sorted(b.keys() | a.keys()):
        p = f"{path}/{seg}"
        hide = secret or (both_dicts and is_secret(seg))  # keys, not list item names
        if p in skip:
            out.not_compared.append(p)
        elif seg not in a:
            out.removed.append(Change("-", p, before=HIDDEN if hide else masked(b[seg])))
        elif seg not in b:
            out.added.append(Change("+", p, after=HIDDEN if hide else masked(a[seg])))
        else:
            _compare(b[seg], a[seg], p, skip, out, secret=hide)
