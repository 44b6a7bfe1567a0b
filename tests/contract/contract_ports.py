"""The fake appliance's TCP ports: served by uvicorn while up, refusing (or resetting, or
hanging) connections while the node reboots."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from typing import Any

import uvicorn


class Port:
    """One TCP port serving an ASGI app while open, refusing connections while closed."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.port = 0
        self._server: uvicorn.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def open(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # rebind after TIME_WAIT
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, lifespan="off", log_config=None, access_log=False)
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)  # what Server.serve would set up
        await server.startup(sockets=[sock])
        self._server = server

    async def close(self) -> None:
        """Stop listening and reset open connections (a node going down mid-request)."""
        server, self._server = self._server, None
        if server is None:
            return
        for srv in server.servers:
            srv.close()
        for conn in list(server.server_state.connections):
            transport = getattr(conn, "transport", None)
            if transport is None:
                continue
            raw = transport.get_extra_info("socket")
            if raw is not None:
                with contextlib.suppress(OSError):  # linger 0: the peer sees a reset
                    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        for task in list(server.server_state.tasks):
            task.cancel()
        await asyncio.sleep(0)


class Rebooting:
    """What a rebooting node's port does besides refusing: reset or hang every connection."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    async def start(self, port: int) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", port)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "reset":
            raw = writer.get_extra_info("socket")
            with contextlib.suppress(OSError):  # linger 0: close sends RST
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return
        self._open.add(writer)  # "hang": read, never answer; the client times out

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for writer in self._open:
            writer.transport.abort()
        await self._server.wait_closed()
