"""Local TCP for tests: a bound socket on a free port, a free port number, uvicorn on it."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import uvicorn


def bound_socket() -> socket.socket:
    """A TCP socket bound to a free port on 127.0.0.1, not yet listening (hand it to uvicorn:
    no other process can take the port in between)."""
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP
    # (without it, Nagle + delayed ACKs add ~40 ms to every response with a body).
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    return s


def free_port() -> int:
    """A TCP port nobody listens on right now, for a child process to bind."""
    with bound_socket() as s:
        return int(s.getsockname()[1])


def url_of(sock: socket.socket) -> str:
    """`http://127.0.0.1:<port>` of a bound socket."""
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


async def serve(
    app: Any, sock: socket.socket, *, lifespan: str = "on", within: float = 10.0
) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    """Serve the ASGI `app` on `sock` in this loop; returns once uvicorn has started.
    Stop it with `server.should_exit = True` and await the task."""
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan=lifespan))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    deadline = time.monotonic() + within
    while not server.started:
        if task.done() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        await asyncio.sleep(0.01)
    return server, task
