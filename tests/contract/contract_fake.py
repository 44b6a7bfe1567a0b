"""A strict fake PPS cluster for the contract tests, written from PPS-API.md and DESIGN §4 only.

Independent of `sim/`: it plays an appliance the way an outside test would. Each node has
its own port (A/P with a VIP: one more port, served by the node holding the VIP). It knows
`realm_auth` (or, in the `legacy` variant, only `GET auth`), the three reads, the
configuration tree, the two exports, `PUT active-users` and `POST maintenance/upgrade`;
anything else answers 404, malformed requests 400. Every request is recorded in
`FakeCluster.calls` with how it authenticated, so tests can assert the client made only
documented calls. An install runs
the KB12940 sequence: install, reboot (port closed: connection refused), back on the new
build with uptime reset and no api keys, rejoin; then the next node.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from contract_config import TREE, is_configuration
from contract_ports import Port, Rebooting
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

ADMIN_USER, ADMIN_PASSWORD, REALM = "ct-admin", "ct-Pa55-not-real", "Admin Users"
API = "/api/v1/"
VIP = "vip"  # the port name of the VIP in `Call.port`
# Fields PPS-API.md shows but a real appliance may leave out (knob `omit`).
OPTIONAL = frozenset(
    {
        "rollback-partition-information",
        "is-last-record",
        "total-returned-record-number",
        "notes",
        "last-config-update",
        "system-date-and-time",
    }
)


@dataclass(frozen=True)
class Knobs:
    """Per-cluster behaviour. Times in seconds (shrunk)."""

    login: str = "realm"  # "realm": realm_auth only (auth 404); "legacy": only GET auth
    key_ttl: float | None = None  # api keys expire this long after issue (401 then)
    omit: frozenset[str] = frozenset()  # optional fields left out of the answers
    install_status: int = 202  # 202 (documented) or 200 (also success, DESIGN §4.10)
    assumed_status: int | None = None  # answer the [assumed] writes with this (404/405/501)
    crlf: bool = False  # export line breaks as \r\n
    # Beyond PPS-API.md, what a real appliance might still do: "status-case" (status words
    # in upper case, no space after the comma), "uptime-seconds" (uptime as a number),
    # "fqdn-host" (host-name as an upper-case FQDN), "member-case" (member names in upper case).
    quirks: frozenset[str] = frozenset()
    one_session: bool = False  # a login ends the node's earlier admin sessions (keys)
    down: str = "refuse"  # while rebooting: "refuse" connections, "reset" or "hang" each one
    install_s: float = 0.1
    reboot_s: float = 0.4
    rejoin_s: float = 0.2
    sessions: int = 412


@dataclass
class Call:
    """One request as the fake saw it."""

    port: str  # node name, or VIP
    node: str | None  # the node that answered (the VIP holder for the VIP port)
    method: str
    path: str
    query: list[tuple[str, str]]
    auth: str  # admin | key | stale-key | unknown-key | bad-admin | none | other
    body: Any  # parsed JSON, {"package": sha256} for an upload, else the raw length
    status: int = 0
    note: str = ""  # why a 4xx was answered


@dataclass
class FakeNode:
    name: str
    build: str
    rollback: str | None
    phase: str = "up"  # up | installing | down | rejoining
    booted: float = field(default_factory=lambda: time.monotonic() - 3 * 86400 - 4000)
    keys: dict[str, float] = field(default_factory=dict)  # api key -> expiry (monotonic)
    port: Port | None = None


class FakeCluster:
    """The nodes of one cluster (standalone, active-passive or active-active)."""

    def __init__(
        self,
        mode: str,
        names: list[str],
        *,
        build: str,
        packages: dict[str, str],  # sha256 of a package file -> the build it installs
        rollback: str | None = None,
        active: int = 0,  # A/P: index of the active node
        vip: bool = False,
        knobs: Knobs | None = None,
    ) -> None:
        self.mode, self.order, self.packages = mode, names, packages
        self.knobs = knobs or Knobs()
        self.nodes = {n: FakeNode(n, build, rollback) for n in names}
        self.home = names[active]
        self.login_permission = True
        self.calls: list[Call] = []
        self.timeline: list[str] = []
        self.vip_port: Port | None = Port(self._app(VIP)) if vip else None
        self._upgrade: asyncio.Task[None] | None = None
        self._holder: str | None = self.home

    # -- life cycle ---------------------------------------------------------------------

    async def start(self) -> None:
        for node in self.nodes.values():
            node.port = Port(self._app(node.name))
            await node.port.open()
        if self.vip_port is not None:
            await self.vip_port.open()

    async def stop(self) -> None:
        if self._upgrade is not None:
            self._upgrade.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._upgrade
        for node in self.nodes.values():
            if node.port is not None:
                await node.port.close()
        if self.vip_port is not None:
            await self.vip_port.close()

    def url(self, name: str) -> str:
        port = self.vip_port if name == VIP else self.nodes[name].port
        assert port is not None
        return port.url

    # -- cluster rules ------------------------------------------------------------------

    def holder(self) -> FakeNode | None:
        """A/P: the node behind the VIP: the active one unless it is down or rejoining."""
        home = self.nodes[self.home]
        if home.phase in ("up", "installing"):
            return home
        other = next(n for n in self.nodes.values() if n is not home)
        return other if other.phase != "down" else None

    def statuscode(self, node: FakeNode) -> str:
        if node.phase == "down":
            return "Enabled, Unreachable"
        if node.phase != "up":
            return "Enabled, Transitioning"
        if self.mode == "active-passive":
            leader = self.holder()
        else:
            leader = next((n for n in self.nodes.values() if n.phase == "up"), None)
        return "Leader" if node is leader else "Enabled"

    def console_install(self, node: str, sha256: str) -> None:
        """What an operator's click on Install Now does (the manual path)."""
        self._start_upgrade(node, self.packages[sha256])

    def _start_upgrade(self, first: str, build: str) -> None:
        others = [n for n in self.order if n != first]
        self._upgrade = asyncio.create_task(self._run_upgrade([first, *others], build))

    async def _run_upgrade(self, order: list[str], build: str) -> None:
        for name in order:
            node, k = self.nodes[name], self.knobs
            self._phase(node, "installing")
            await asyncio.sleep(k.install_s)
            node.keys.clear()
            self._phase(node, "down")
            assert node.port is not None
            await node.port.close()
            stand_in = Rebooting(k.down)
            if k.down != "refuse":  # the port accepts, then resets or never answers
                await stand_in.start(node.port.port)
            await asyncio.sleep(k.reboot_s)
            await stand_in.stop()
            node.rollback, node.build, node.booted = node.build, build, time.monotonic()
            await node.port.open()
            self._phase(node, "rejoining")
            await asyncio.sleep(k.rejoin_s)
            self._phase(node, "up")

    def _phase(self, node: FakeNode, phase: str) -> None:
        node.phase = phase
        self.timeline.append(f"{node.name}: {phase}")
        if self.vip_port is not None:
            held = self.holder()
            now = held.name if held else None
            if now != self._holder:
                self.timeline.append(f"vip: {self._holder} -> {now}")
                self._holder = now

    # -- HTTP ---------------------------------------------------------------------------

    def _app(self, port: str) -> Any:
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                return
            request = Request(scope, receive)
            try:
                response = await self._handle(port, request)
                await response(scope, receive, send)
            except asyncio.CancelledError:  # the port closed under the request: a reset
                return

        return app

    async def _handle(self, port: str, request: Request) -> Response:
        node = self.holder() if port == VIP else self.nodes[port]
        raw = await request.body()
        call = Call(
            port=port,
            node=node.name if node else None,
            method=request.method,
            path=request.url.path,
            query=list(request.query_params.multi_items()),
            auth=self._auth(node, request.headers.get("authorization")),
            body=len(raw),
        )
        self.calls.append(call)
        if node is None:
            response: Response = _error(call, 503, "no node holds the VIP")
        else:
            response = await self._route(node, call, request, raw)
        call.status = response.status_code
        return response

    def _auth(self, node: FakeNode | None, header: str | None) -> str:
        if not header:
            return "none"
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return "other"
        try:
            user, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return "other"
        if not sep:
            return "other"
        if (user, password) == (ADMIN_USER, ADMIN_PASSWORD):
            return "admin"
        if password:
            return "bad-admin"
        expiry = node.keys.get(user) if node else None
        if expiry is None:
            return "unknown-key"
        return "key" if expiry > time.monotonic() else "stale-key"

    async def _route(self, node: FakeNode, call: Call, req: Request, raw: bytes) -> Response:
        sub = call.path.removeprefix(API) if call.path.startswith(API) else ""
        route = (call.method, sub)
        login = {("POST", "realm_auth"): "realm", ("GET", "auth"): "legacy"}
        if route in login:
            if self.knobs.login != login[route]:
                return _error(call, 404, "unknown resource")
            return self._login(node, call, req, raw)
        handlers = {
            ("GET", "system/system-information"): self._system_information,
            ("GET", "system/active-users"): self._active_users,
            ("PUT", "system/active-users"): self._set_permission,
            ("GET", "system/status/overview"): self._overview,
            ("POST", "system/binary-configuration"): self._export,
            ("POST", "system/maintenance/upgrade"): self._install,
        }
        handler = self._configuration if is_configuration(*route) else handlers.get(route)
        if handler is None:
            return _error(call, 404, "unknown resource")
        if call.auth != "key":
            return _error(call, 401, f"api key refused ({call.auth})")
        return await handler(node, call, req, raw)

    def _login(self, node: FakeNode, call: Call, req: Request, raw: bytes) -> Response:
        if call.query:
            return _error(call, 400, "no query expected")
        if call.method == "POST":
            body = _json(req, raw)
            call.body = body
            if body != {"realm": REALM}:
                return _error(call, 400, 'body must be {"realm": "Admin Users"}')
        elif raw:
            return _error(call, 400, "GET auth takes no body")
        if call.auth != "admin":
            return _error(call, 401, "invalid credentials")
        key = secrets.token_urlsafe(18)
        if self.knobs.one_session:
            node.keys.clear()
        ttl = self.knobs.key_ttl
        node.keys[key] = time.monotonic() + (ttl if ttl is not None else 1e9)
        return JSONResponse({"api_key": key})

    async def _system_information(
        self, node: FakeNode, call: Call, req: Request, raw: bytes
    ) -> Response:
        if call.query or raw:
            return _error(call, 400, "no query or body expected")
        data: dict[str, Any] = {
            "system-information": {
                "host-name": self._host_name(node),
                "machine-id": f"mid-{node.name}",
                "serial-number": f"SN{abs(hash(node.name)) % 10**8:08d}",
                "model": "PSA-7000v",  # an extra field the client must ignore
            },
            "software-inventory": {"software": {"build": node.build, "type": "ive"}},
        }
        if node.rollback:
            data["rollback-partition-information"] = {
                "build": node.rollback,
                "os-name": "ive-sa",
                "os-version": node.rollback.split(" ")[0],
            }
        return JSONResponse(self._drop(data))

    async def _active_users(self, node: FakeNode, call: Call, req: Request, raw: bytes) -> Response:
        query = dict(call.query)
        if len(query) != len(call.query) or not set(query) <= {"number", "start"} or raw:
            return _error(call, 400, "only number= and start= are known")
        try:
            number, start = int(query.get("number", 200)), int(query.get("start", 1))
        except ValueError:
            return _error(call, 400, "number and start are integers")
        if number < 1 or start < 1:
            return _error(call, 400, "number >= 1 and start >= 1 (1-based)")
        total = self.knobs.sessions
        rows = [_session(i, self.order) for i in range(start - 1, min(total, start - 1 + number))]
        box: dict[str, Any] = {
            "active-user-records": {"active-user-record": rows},
            "total-matched-record-number": total,
            "total-returned-record-number": len(rows),
            "user-login-permission": self.login_permission,
            "is-last-record": start - 1 + len(rows) >= total,
        }
        return JSONResponse({"active-users": self._drop(box)})

    async def _set_permission(
        self, node: FakeNode, call: Call, req: Request, raw: bytes
    ) -> Response:
        if self.knobs.assumed_status is not None:
            return _error(call, self.knobs.assumed_status, "not supported")
        body = _json(req, raw)
        call.body = body
        if call.query or not (
            isinstance(body, dict)
            and set(body) == {"user-login-permission"}
            and isinstance(body["user-login-permission"], bool)
        ):
            return _error(call, 400, 'body must be {"user-login-permission": true|false}')
        self.login_permission = body["user-login-permission"]
        return JSONResponse({"user-login-permission": self.login_permission})

    async def _overview(self, node: FakeNode, call: Call, req: Request, raw: bytes) -> Response:
        if call.query or raw:
            return _error(call, 400, "no query or body expected")
        members = []
        if self.mode != "standalone":
            members = [
                {"name": self._member(n), "enabled": True, "statuscode": self._word(n), "notes": ""}
                for n in self.nodes.values()
            ]
        up = int(time.monotonic() - node.booted)
        days, rest = divmod(up, 86400)
        hours, rest = divmod(rest, 3600)
        minutes, seconds = divmod(rest, 60)
        uptime: Any = {"days": days, "hours": hours, "minutes": minutes, "seconds": seconds}
        if "uptime-seconds" in self.knobs.quirks:
            uptime = up
        data = {
            "cluster-member-status": [self._drop(m) for m in members],
            "uptime": uptime,
            "system-date-and-time": time.strftime("%Y/%m/%d %H:%M:%S"),
            "last-config-update": {"device": self.home, "time": "2026/11/20 09:00:00"},
        }
        return JSONResponse(self._drop(data))

    async def _export(self, node: FakeNode, call: Call, req: Request, raw: bytes) -> Response:
        kinds = ("system_config", "user_config")
        if raw or len(call.query) != 1 or call.query[0][0] != "export":
            return _error(call, 400, "exactly ?export=system_config|user_config, no body")
        if call.query[0][1] not in kinds:
            return _error(call, 400, f"unknown export {call.query[0][1]!r}")
        # encodebytes puts a line break after every 76 characters
        text = base64.encodebytes(export_bytes(node.name, call.query[0][1])).decode()
        if self.knobs.crlf:
            text = text.replace("\n", "\r\n")
        return PlainTextResponse(text)

    async def _configuration(
        self, node: FakeNode, call: Call, req: Request, raw: bytes
    ) -> Response:
        if raw or call.query:
            return _error(call, 400, "a configuration read takes no query and no body")
        found = TREE.get(call.path.removeprefix(API))
        return _error(call, 404, "unknown resource") if found is None else JSONResponse(found)

    async def _install(self, node: FakeNode, call: Call, req: Request, raw: bytes) -> Response:
        if self.knobs.assumed_status is not None:
            return _error(call, self.knobs.assumed_status, "not supported")
        if call.query or not req.headers.get("content-type", "").startswith("multipart/form-data"):
            return _error(call, 400, "multipart/form-data expected, no query")
        async with req.form() as form:
            upload = form.get("package")
            if set(form.keys()) != {"package"} or not isinstance(upload, UploadFile):
                return _error(call, 400, "exactly one multipart field: the file in 'package'")
            digest = hashlib.sha256(await upload.read()).hexdigest()
        call.body = {"package": digest}
        if digest not in self.packages:
            return _error(call, 400, "not a valid package")
        if self._upgrade is not None and not self._upgrade.done():
            return _error(call, 422, "an upgrade is already in progress")
        if self.mode == "active-passive" and node.name != self.home:
            return _error(call, 422, "install on the active node")
        self._start_upgrade(node.name, self.packages[digest])
        return JSONResponse({"status": "installing"}, status_code=self.knobs.install_status)

    def _host_name(self, node: FakeNode) -> str:
        if "fqdn-host" in self.knobs.quirks:
            return f"{node.name.upper()}.corp.example.net"
        return node.name

    def _member(self, node: FakeNode) -> str:
        return node.name.upper() if "member-case" in self.knobs.quirks else node.name

    def _word(self, node: FakeNode) -> str:
        word = self.statuscode(node)
        return word.upper().replace(", ", ",") if "status-case" in self.knobs.quirks else word

    def _drop(self, data: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in data.items() if k not in self.knobs.omit}


def export_bytes(node: str, export: str) -> bytes:
    """The binary configuration a node exports (before base64)."""
    return hashlib.sha256(f"{node}/{export}".encode()).digest() * 48


def _session(i: int, nodes: list[str]) -> dict[str, Any]:
    return {
        "active-user-name": f"user{i:04d}",
        "authentication-realm": "Users",
        "login-node": nodes[i % len(nodes)],
        "session-id": f"sid{i:08x}",
        "user-sign-in-time": "2026/11/25 10:01:02",
        "agent-type": "Pulse Secure",  # extra
    }


def _json(req: Request, raw: bytes) -> Any:
    if not req.headers.get("content-type", "").startswith("application/json"):
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _error(call: Call, status: int, note: str) -> Response:
    call.note = note
    return JSONResponse({"message": note}, status_code=status)
