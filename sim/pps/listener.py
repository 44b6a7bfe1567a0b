"""One TCP port of the simulator that can go dark and come back on the same port number.

A rebooting node must look like a rebooting appliance to the client: new connections are
refused (the listening socket is closed) and connections already open are reset (their
transports are aborted, in-flight requests cancelled). When the node comes back, a new
socket is bound to the same port. uvicorn serves the Starlette app on that socket; we
drive `Server.startup` ourselves instead of `Server.serve`, because `serve` installs
signal handlers and runs a main loop per server, and we need many servers per process.
An app may also drop one request's connection with a reset (`reset_connection`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

RESET_KEY = "sim.reset_connection"  # in the scope: drops the request's connection


class ResetConnection(Exception):
    """A handler's way to say "drop this request's connection, answer nothing" (a request
    lost in transit); the app calls `reset_connection(scope)` when it catches it."""


def reset_connection(scope: Scope) -> None:
    """Reset the connection that carries the request of `scope` (a listener's request)."""
    scope[RESET_KEY]()


def _reset(transport: asyncio.Transport) -> None:
    raw = transport.get_extra_info("socket")
    if raw is not None:
        # Linger 0: closing sends RST, so the peer sees "connection reset".
        with contextlib.suppress(OSError):
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


class Listener:
    """A port serving `app` while open; refusing connections while closed."""

    def __init__(
        self,
        app: ASGIApp,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port  # 0 until the first open picks a free port
        self.ssl_certfile = ssl_certfile
        self.ssl_keyfile = ssl_keyfile
        self._server: uvicorn.Server | None = None
        self._sock: socket.socket | None = None

    @property
    def is_open(self) -> bool:
        return self._server is not None

    @property
    def scheme(self) -> str:
        return "https" if self.ssl_certfile else "http"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    async def open(self) -> None:
        """Bind (the same port after the first time) and start serving."""
        if self._server is not None:
            return
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # proto IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted connections only
        # for sockets that say so, and without it every answer waits ~40 ms (Nagle).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        # SO_REUSEADDR lets us rebind the port while old connections sit in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._serve,
            interface="asgi3",
            lifespan="off",
            log_config=None,
            access_log=False,
            ssl_certfile=self.ssl_certfile,
            ssl_keyfile=self.ssl_keyfile,
            timeout_keep_alive=30,
        )
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        await server.startup(sockets=[sock])
        self._server, self._sock = server, sock

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app, ending quietly when the listener is closed under a request (closing
        cancels the requests in flight; uvicorn would log each with a traceback)."""
        scope[RESET_KEY] = lambda: self._reset_request(scope)
        try:
            await self.app(scope, receive, send)
        except asyncio.CancelledError:
            return

    def _reset_request(self, scope: Scope) -> None:
        server = self._server
        for conn in list(server.server_state.connections) if server else []:
            cycle = getattr(conn, "cycle", None)
            transport = getattr(conn, "transport", None)
            if cycle is not None and cycle.scope is scope and transport is not None:
                _reset(transport)

    async def close(self) -> None:
        """Stop listening (new connections are refused) and reset open connections."""
        server, sock = self._server, self._sock
        self._server = self._sock = None
        if server is None:
            return
        for srv in getattr(server, "servers", []):
            srv.close()
        if sock is not None:
            sock.close()
        for conn in list(server.server_state.connections):
            transport = getattr(conn, "transport", None)
            if transport is not None:
                _reset(transport)
        for task in list(server.server_state.tasks):
            task.cancel()
        await asyncio.sleep(0)
