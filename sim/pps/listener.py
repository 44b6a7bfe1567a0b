"""One TCP port of the simulator that can go dark and come back on the same port number.

A rebooting node must look like a rebooting appliance to the client: new connections are
refused (the listening socket is closed) and connections already open are reset (their
transports are aborted, in-flight requests cancelled). When the node comes back, a new
socket is bound to the same port. uvicorn serves the Starlette app on that socket; we
drive `Server.startup` ourselves instead of `Server.serve`, because `serve` installs
signal handlers and runs a main loop per server, and we need many servers per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send


def cut_quietly(app: ASGIApp) -> ASGIApp:
    """End a request quietly when its listener is closed under it.

    Closing a listener cancels the requests in flight (the peer already saw a reset);
    without this, uvicorn would log each one as an application error with a traceback.
    """

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await app(scope, receive, send)
        except asyncio.CancelledError:
            return

    return wrapped


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
        self.app = cut_quietly(app)
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
            self.app,
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
            if transport is None:
                continue
            raw = transport.get_extra_info("socket")
            if raw is not None:
                # Linger 0: closing sends RST, so the peer sees "connection reset".
                with contextlib.suppress(OSError):
                    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        for task in list(server.server_state.tasks):
            task.cancel()
        await asyncio.sleep(0)
