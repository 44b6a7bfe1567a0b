"""Slack's Socket Mode side for the stand-in: connection tickets, the WebSocket, envelopes.

    hub = SocketHub(app_token="xapp-...")          # None: any `xapp-` token is accepted
    url = await hub.open_url("127.0.0.1")          # what `apps.connections.open` answers
    d = await hub.deliver("slash_commands", fields, accepts_response_payload=True)
    d.status, d.ack_payload                        # 200 and the ack's payload, 408 no ack
    await hub.drop()                               # close every connection (clients reconnect)

The WebSocket is served by a small `aiohttp.web` server on its own port (uvicorn cannot
serve WebSockets without `websockets`/`wsproto`), started on the first
`apps.connections.open`. Frames are Slack's: `{"type": "hello", ...}` on connect,
envelopes `{"envelope_id", "payload", "type", "accepts_response_payload"}`, acks
`{"envelope_id", "payload"?}` from the app, `{"type": "disconnect", "reason"}` before
Slack wants a client to move. An envelope is sent on one open connection (round robin,
as Slack spreads them); one not acked within `ack_timeout` fails with 408, as the user
would see `operation_timeout`. Nothing is redelivered.

This module imports nothing of the product: it is Slack's side of the contract.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from sim.slack.signing import APP_ID

ACK_TIMEOUT_SECONDS = 3.0  # Slack's limit for acknowledging an envelope
TICKET_SECONDS = 60.0  # how long an `apps.connections.open` URL may wait to be used
LINK_PATH = "/link/"

# Delivery outcomes and the status the control API reports for each.
STATUS = {"acked": 200, "no_ack": 408, "connection_closed": 503, "no_connection": 503}


@dataclass
class Connection:
    """One WebSocket a Socket Mode client opened (kept after it closed, for the record)."""

    id: int
    ws: web.WebSocketResponse = field(repr=False)
    opened_at: float
    closed_at: float | None = None
    close_code: int | None = None
    acks: int = 0

    @property
    def open(self) -> bool:
        return self.closed_at is None and not self.ws.closed

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "opened_at": self.opened_at,
            "closed_at": self.closed_at,
            "close_code": self.close_code,
            "acks": self.acks,
        }


@dataclass
class Delivery:
    """One envelope sent to the app and what came of it."""

    envelope_id: str
    type: str
    payload: dict[str, Any]
    accepts_response_payload: bool
    at: float
    connection: int | None = None
    outcome: str = "pending"  # then one of STATUS
    ack_payload: dict[str, Any] | None = None

    @property
    def status(self) -> int:
        return STATUS.get(self.outcome, 500)

    @property
    def ok(self) -> bool:
        return self.outcome == "acked"

    def envelope(self) -> dict[str, Any]:
        """The frame Slack sends (field order as in Slack's examples)."""
        return {
            "envelope_id": self.envelope_id,
            "payload": self.payload,
            "type": self.type,
            "accepts_response_payload": self.accepts_response_payload,
        }

    def public(self) -> dict[str, Any]:
        return {
            "envelope_id": self.envelope_id,
            "type": self.type,
            "accepts_response_payload": self.accepts_response_payload,
            "at": self.at,
            "connection": self.connection,
            "outcome": self.outcome,
            "status": self.status,
            "ack_payload": self.ack_payload,
        }


class SocketHub:
    """Socket Mode connections of one stand-in workspace and the envelopes sent over them."""

    def __init__(
        self,
        *,
        app_token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        ack_timeout: float = ACK_TIMEOUT_SECONDS,
    ) -> None:
        self.app_token = app_token
        self.host = host
        self.port = port
        self.ack_timeout = ack_timeout
        self.connections: list[Connection] = []
        self.deliveries: list[Delivery] = []
        self.refused: int = 0  # WebSocket attempts without a valid ticket
        self._tickets: dict[str, float] = {}
        self._pending: dict[str, tuple[Connection, asyncio.Future[dict[str, Any] | None]]] = {}
        self._runner: web.AppRunner | None = None
        self._start_lock = asyncio.Lock()
        self._next_id = 0
        self._turn = 0

    # -- the Web API side --------------------------------------------------------------
    def token_error(self, token: str | None) -> str | None:
        """The Slack error `apps.connections.open` answers for `token`, or None."""
        if not token:
            return "not_authed"
        if not token.startswith("xapp-"):
            return "not_allowed_token_type" if token.startswith("xox") else "invalid_auth"
        if self.app_token is not None and not secrets.compare_digest(token, self.app_token):
            return "invalid_auth"
        return None

    async def open_url(self, hostname: str | None) -> str:
        """Issue a one-use WebSocket URL on `hostname` (the name the caller reached us by)."""
        port = await self._start()
        now = time.monotonic()
        self._tickets = {t: exp for t, exp in self._tickets.items() if exp > now}
        ticket = secrets.token_hex(16)
        self._tickets[ticket] = now + TICKET_SECONDS
        host = hostname or self.host
        return f"ws://{host}:{port}{LINK_PATH}?ticket={ticket}&app_id={APP_ID}"

    # -- the server ----------------------------------------------------------------------
    async def _start(self) -> int:
        async with self._start_lock:
            if self._runner is None:
                app = web.Application()
                app.router.add_get(LINK_PATH, self._handle)
                runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
                await runner.setup()
                await web.TCPSite(runner, self.host, self.port).start()
                self._runner = runner
                self.port = int(runner.addresses[0][1])
            return self.port

    async def close(self) -> None:
        """Close every connection and stop the server."""
        await self.drop(WSCloseCode.GOING_AWAY)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        expires = self._tickets.pop(request.query.get("ticket", ""), None)
        if expires is None or expires < time.monotonic():
            self.refused += 1
            return web.json_response({"ok": False, "error": "invalid_ticket"}, status=401)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._next_id += 1
        conn = Connection(self._next_id, ws, opened_at=time.time())
        self.connections.append(conn)
        try:
            await ws.send_json(self._hello())
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._on_text(conn, msg.data)
        except ConnectionError:
            pass  # the client went away mid-send; recorded as closed below
        finally:
            conn.closed_at = time.time()
            conn.close_code = ws.close_code
            for c, fut in self._pending.values():
                if c is conn and not fut.done():
                    fut.set_result(None)
        return ws

    def _hello(self) -> dict[str, Any]:
        return {
            "type": "hello",
            "num_connections": len(self.open_connections()),
            "debug_info": {
                "host": "applink-standin",
                "build_number": 1,
                "approximate_connection_time": 18060,
            },
            "connection_info": {"app_id": APP_ID},
        }

    def _on_text(self, conn: Connection, data: str) -> None:
        try:
            msg = json.loads(data)
        except ValueError:
            return
        if not isinstance(msg, dict):
            return
        pending = self._pending.get(str(msg.get("envelope_id")))
        if pending is None or pending[1].done():
            return  # an ack for nothing we wait on: Slack ignores it too
        conn.acks += 1
        payload = msg.get("payload")
        pending[1].set_result(payload if isinstance(payload, dict) else {})

    # -- connections and deliveries -----------------------------------------------------
    def open_connections(self) -> list[Connection]:
        return [c for c in self.connections if c.open]

    @property
    def connected(self) -> bool:
        return bool(self.open_connections())

    def _pick(self) -> Connection | None:
        conns = self.open_connections()
        if not conns:
            return None
        self._turn += 1
        return conns[self._turn % len(conns)]

    async def deliver(
        self, kind: str, payload: dict[str, Any], *, accepts_response_payload: bool
    ) -> Delivery:
        """Send one envelope and wait for its ack (up to `ack_timeout`)."""
        d = Delivery(uuid.uuid4().hex, kind, payload, accepts_response_payload, time.time())
        self.deliveries.append(d)
        conn = self._pick()
        if conn is None:
            d.outcome = "no_connection"
            return d
        d.connection = conn.id
        fut: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
        self._pending[d.envelope_id] = (conn, fut)
        try:
            await conn.ws.send_str(json.dumps(d.envelope()))
            ack = await asyncio.wait_for(fut, self.ack_timeout)
        except TimeoutError:
            d.outcome = "no_ack"
        except ConnectionError:
            d.outcome = "connection_closed"
        else:
            d.outcome = "connection_closed" if ack is None else "acked"
            if ack is not None:
                # The payload only counts where the envelope accepts one (as in Slack).
                d.ack_payload = ack if accepts_response_payload else None
        finally:
            self._pending.pop(d.envelope_id, None)
        return d

    async def drop(self, code: int = WSCloseCode.GOING_AWAY) -> int:
        """Close every open connection with a close frame; the number closed."""
        conns = self.open_connections()
        for c in conns:
            with contextlib.suppress(ConnectionError):
                await c.ws.close(code=code, message=b"closed by the stand-in")
        return len(conns)

    async def refresh(self, reason: str = "refresh_requested") -> int:
        """Ask every open connection's client to move (`{"type": "disconnect"}`)."""
        conns = self.open_connections()
        frame = {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-standin"}}
        for c in conns:
            with contextlib.suppress(ConnectionError):
                await c.ws.send_json(frame)
        return len(conns)

    def public(self) -> dict[str, Any]:
        """The JSON shape of `GET /_standin/socket`."""
        return {
            "connected": self.connected,
            "port": self.port if self._runner is not None else None,
            "refused": self.refused,
            "connections": [c.public() for c in self.connections],
            "deliveries": [d.public() for d in self.deliveries],
        }
