"""An appliance's answer read with a size cap: `Reply`, and `read_capped` that streams it.

httpx buffers a whole answer unless told otherwise; a node (or anything in front of it)
that sends hundreds of MiB would cost that much memory. The transport streams every answer
and stops at the call's cap: `TooLarge` for an answer we need whole, a cut-off body for an
error answer (only its first words are shown).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from jobs.appliance.policy import Limits


class TooLarge(Exception):
    """The answer (status `status`) is longer than `limit` bytes (announced, or seen)."""

    def __init__(self, status: int, limit: int) -> None:
        super().__init__(f"HTTP {status} answer longer than {limit} bytes")
        self.status = status
        self.limit = limit


@dataclass(frozen=True)
class Reply:
    """A complete (or, for errors, cut-off) answer: status, reason and body bytes."""

    status_code: int
    reason_phrase: str
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON; `ValueError` when it is not."""
        return json.loads(self.body)

    def short_message(self, limit: int = 160) -> str:
        """The appliance's own words for an error, shortened (no schema is documented)."""
        text = ""
        with contextlib.suppress(ValueError):
            data = self.json()
            if isinstance(data, dict):
                for k in ("message", "error", "errors", "detail", "status"):
                    if data.get(k):
                        text = str(data[k])
                        break
        if not text:
            text = " ".join(self.text.split()) or self.reason_phrase or "error"
        return text if len(text) <= limit else text[: limit - 1] + "…"


async def send_capped(
    http: httpx.AsyncClient,
    request: httpx.Request,
    *,
    auth: tuple[str, str] | None,
    limits: Limits,
    max_bytes: int | None = None,
    skip_body: Callable[[int], bool] = lambda _status: False,
) -> Reply:
    """Send `request` and read its answer streamed: a 2xx whole up to `max_bytes` (default
    `limits.json`, beyond it `TooLarge`), an error's first `limits.error` bytes, nothing
    when `skip_body(status)`. The connection is released either way."""
    resp = await http.send(request, auth=auth, stream=True)
    try:
        status = resp.status_code
        if skip_body(status):
            body = b""
        elif 200 <= status < 300:
            body = await read_capped(resp, limits.json if max_bytes is None else max_bytes)
        else:
            body = await read_capped(resp, limits.error, cut=True)
    finally:
        await resp.aclose()
    return Reply(status, resp.reason_phrase, body)


async def read_capped(resp: httpx.Response, limit: int, *, cut: bool = False) -> bytes:
    """Read a streamed answer's body, at most `limit` bytes.

    Beyond it: `TooLarge`, or with `cut` the first `limit` bytes. A `Content-Length` over
    the limit is refused before anything is read.
    """
    declared = resp.headers.get("content-length", "")
    if not cut and declared.isdigit() and int(declared) > limit:
        raise TooLarge(resp.status_code, limit)
    buf = bytearray()
    async for chunk in resp.aiter_bytes():
        room = limit - len(buf)
        if len(chunk) > room:
            if not cut:
                raise TooLarge(resp.status_code, limit)
            buf += chunk[:room]
            break
        buf += chunk
    return bytes(buf)
