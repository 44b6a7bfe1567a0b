"""Bounds on what a request may send the bot's web server, before any app code sees it.

An unsigned 100 MiB POST used to be read, decoded and parsed by Bolt before the signature
check, stalling the event loop (and `/healthz`) for seconds. `BodyLimit` wraps the ASGI
app: a `Content-Length` over `MAX_BODY_BYTES` is answered 413 without reading the body; a
body without one (chunked) is read only up to the same size; a body that trickles in slower
than `BODY_READ_SECONDS` is answered 408. Slack's requests are a few kilobytes.
"""

from __future__ import annotations

import asyncio
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 1 << 20
BODY_READ_SECONDS = 10.0


async def _refuse(send: Send, status: int, error: str) -> None:
    body = json.dumps({"ok": False, "error": error}).encode()
    # `connection: close`: the rest of a refused body is never read, so the connection
    # cannot carry another request.
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """ASGI middleware: read the whole body first, at most `max_bytes`, then call `app`."""

    def __init__(self, app: ASGIApp, max_bytes: int | None = None,
                 read_seconds: float | None = None) -> None:
        self.app = app
        self.max_bytes = MAX_BODY_BYTES if max_bytes is None else max_bytes
        self.read_seconds = BODY_READ_SECONDS if read_seconds is None else read_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await _refuse(send, 400, "invalid content-length")
                return
            if int(declared) > self.max_bytes:
                await _refuse(send, 413, "request too large")
                return
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.read_seconds):
                while True:
                    message = await receive()
                    if message["type"] != "http.request":
                        return  # the client went away
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_bytes:
                        await _refuse(send, 413, "request too large")
                        return
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            await _refuse(send, 408, "request body too slow")
            return
        await self.app(scope, _replay(b"".join(chunks), receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands out `body` once, then waits on the real one (disconnects)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
