"""The configuration tree (PPS-API.md "Configuration tree"): a bounded, read-only walk.

`GET /api/v1/configuration` answers a map of links (`{"users": {"href": "..."}}`); a GET on
each `href` answers that subtree, whose objects may carry links again. `walk_tree` follows
them breadth-first and puts each answer where its link was, within three bounds: the bytes
of the answers read, the objects (answers) read, and an overall deadline. What it could not
read (a refused link, a cap reached, the deadline) is listed by tree path, never guessed.

Tree paths are JSON-pointer-like: `/users/user-realms/realm/Users`. Keys are escaped (`~0`,
`~1`); a list whose items are all objects with distinct text `name`s is addressed by those
names (a realm stays `/…/realm/Users` when another realm is added before it), else by index.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from jobs.appliance.protocol import ApplianceError, Rejected, Unreachable
from jobs.config.clock import Clock

ROOT_HREF = "/api/v1/configuration"
_FOLLOW = re.compile(r"^/api/v1/configuration/[^?#]*$")
MiB = 1024 * 1024

# An `href` answer: (the parsed JSON, the bytes it took). Raises the appliance errors.
Fetch = Callable[[str], Awaitable[tuple[Any, int]]]


@dataclass(frozen=True)
class TreeLimits:
    """How much of the tree one walk may read: bytes of answers, answers, seconds."""

    max_bytes: int = 16 * MiB
    max_objects: int = 5000
    seconds: float = 120.0


@dataclass(frozen=True)
class NotRead:
    """A subtree left out of a snapshot, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class ConfigTree:
    """One walk's result: the tree, what it cost, and what it left out."""

    tree: dict[str, Any]
    objects: int  # answers read, the root included
    size: int  # bytes of those answers
    not_read: tuple[NotRead, ...] = ()
    stopped: str | None = None  # why the walk ended early: a cap or the deadline

    @property
    def complete(self) -> bool:
        return not self.not_read


# -- tree paths ------------------------------------------------------------------------
def escape(key: str) -> str:
    """A key as one path segment (JSON pointer escaping)."""
    return key.replace("~", "~0").replace("/", "~1")


def list_names(items: list[Any]) -> list[str] | None:
    """Each item's `name` when all are objects with distinct text names, else None."""
    names = [i.get("name") if isinstance(i, dict) else None for i in items]
    if not items or not all(isinstance(n, str) and n for n in names):
        return None
    texts = [str(n) for n in names]
    return texts if len(set(texts)) == len(texts) else None


def children(value: Any) -> Iterator[tuple[str, Any, Any]]:
    """(segment, raw key or index, child) of a JSON object or list."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield escape(str(k)), k, v
    elif isinstance(value, list):
        names = list_names(value)
        for i, v in enumerate(value):
            yield escape(names[i]) if names else str(i), i, v


def is_link(value: Any) -> bool:
    """An object carrying an `href` inside the configuration API (only those are followed)."""
    if not isinstance(value, dict):
        return False
    href = value.get("href")
    return isinstance(href, str) and bool(_FOLLOW.match(href)) and "/../" not in href + "/"


@dataclass
class _Link:
    path: str
    parent: Any  # the dict or list holding the link
    key: Any
    href: str


def _links(value: Any, path: str) -> Iterator[_Link]:
    """The links inside `value` (not inside links), breadth-first order kept by the caller."""
    for seg, key, child in children(value):
        p = f"{path}/{seg}"
        if is_link(child):
            yield _Link(p, value, key, str(child["href"]))
        elif isinstance(child, dict | list):
            yield from _links(child, p)


# -- the walk --------------------------------------------------------------------------
async def walk_tree(fetch: Fetch, limits: TreeLimits, clock: Clock, node: str) -> ConfigTree:
    """Read the tree from `fetch` within `limits`.

    Raises the appliance error when the root cannot be read (or is no JSON object, or alone
    exceeds the byte cap); a subtree that cannot be read is listed in `not_read` instead.
    """
    deadline = clock.monotonic() + limits.seconds
    try:
        root, size = await asyncio.wait_for(fetch(ROOT_HREF), max(0.0, limits.seconds))
    except TimeoutError:
        raise Unreachable(node, f"configuration: no answer within {limits.seconds:g} s") from None
    if not isinstance(root, dict):
        raise Rejected(node, 200, "configuration: the answer is not a JSON object")
    if size > limits.max_bytes:
        raise Rejected(node, 200, f"configuration: the root alone exceeds {limits.max_bytes} bytes")
    objects, seen = 1, {ROOT_HREF}
    queue: deque[_Link] = deque(_links(root, ""))
    missed: list[NotRead] = []
    stopped: str | None = None
    while queue:
        link = queue.popleft()
        if link.href in seen:
            continue  # a second link to what was read already stays a plain link
        stopped = _cap_reached(limits, objects, size, deadline - clock.monotonic())
        if stopped:
            missed.append(NotRead(link.path, stopped))
            break
        try:
            data, n = await asyncio.wait_for(fetch(link.href), deadline - clock.monotonic())
        except TimeoutError:
            stopped = f"deadline of {limits.seconds:g} s reached"
            missed.append(NotRead(link.path, stopped))
            break
        except Unreachable as exc:
            stopped = f"{node} stopped answering ({exc.message})"
            missed.append(NotRead(link.path, stopped))
            break
        except ApplianceError as exc:
            missed.append(NotRead(link.path, exc.message))
            continue
        if size + n > limits.max_bytes:
            stopped = f"size cap of {limits.max_bytes} bytes reached"
            missed.append(NotRead(link.path, stopped))
            break
        seen.add(link.href)
        objects, size = objects + 1, size + n
        rest = {k: v for k, v in link.parent[link.key].items() if k != "href"}
        merged = {**rest, **data} if isinstance(data, dict) else {**rest, "value": data}
        link.parent[link.key] = merged
        queue.extend(_links(merged, link.path))
    if stopped:
        missed.extend(NotRead(link.path, stopped) for link in queue if link.href not in seen)
    return ConfigTree(root, objects, size, tuple(missed), stopped)


def _cap_reached(limits: TreeLimits, objects: int, size: int, left: float) -> str | None:
    if objects >= limits.max_objects:
        return f"object cap of {limits.max_objects} reached"
    if size >= limits.max_bytes:
        return f"size cap of {limits.max_bytes} bytes reached"
    if left <= 0:
        return f"deadline of {limits.seconds:g} s reached"
    return None
