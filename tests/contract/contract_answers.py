"""The wire of the contract fake (tests/contract/contract_fake.py), from PPS-API.md only:
its credentials and knobs, the record of each request (`Call`), a node's state, and the
answer to each documented call (`Answers`, mixed into `FakeCluster`)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from tests.contract.contract_config import TREE, is_configuration
from tests.contract.contract_ports import Port

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


class Answers:
    """The documented calls, answered from the cluster's state (a mixin of `FakeCluster`:
    these are the parts of it the answers read and change)."""

    mode: str
    order: list[str]
    nodes: dict[str, FakeNode]
    home: str
    knobs: Knobs
    packages: dict[str, str]
    login_permission: bool
    _upgrade: asyncio.Task[None] | None

    def statuscode(self, node: FakeNode) -> str:
        raise NotImplementedError

    def _start_upgrade(self, first: str, build: str) -> None:
        raise NotImplementedError

    async def _route(self, node: FakeNode, call: Call, req: Request, raw: bytes) -> Response:
        sub = call.path.removeprefix(API) if call.path.startswith(API) else ""
        route = (call.method, sub)
        login = {("POST", "realm_auth"): "realm", ("GET", "auth"): "legacy"}
        if route in login:
            if self.knobs.login != login[route]:
                return error_answer(call, 404, "unknown resource")
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
            return error_answer(call, 404, "unknown resource")
        if call.auth != "key":
            return error_answer(call, 401, f"api key refused ({call.auth})")
        return await handler(node, call, req, raw)

    def _login(self, node: FakeNode, call: Call, req: Request, raw: bytes) -> Response:
        if call.query:
            return error_answer(call, 400, "no query expected")
        if call.method == "POST":
            body = _json(req, raw)
            call.body = body
            if body != {"realm": REALM}:
                return error_answer(call, 400, 'body must be {"realm": "Admin Users"}')
        elif raw:
            return error_answer(call, 400, "GET auth takes no body")
        if call.auth != "admin":
            return error_answer(call, 401, "invalid credentials")
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
            return error_answer(call, 400, "no query or body expected")
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
            return error_answer(call, 400, "only number= and start= are known")
        try:
            number, start = int(query.get("number", 200)), int(query.get("start", 1))
        except ValueError:
            return error_answer(call, 400, "number and start are integers")
        if number < 1 or start < 1:
            return error_answer(call, 400, "number >= 1 and start >= 1 (1-based)")
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
            return error_answer(call, self.knobs.assumed_status, "not supported")
        body = _json(req, raw)
        call.body = body
        if call.query or not (
            isinstance(body, dict)
            and set(body) == {"user-login-permission"}
            and isinstance(body["user-login-permission"], bool)
        ):
            return error_answer(call, 400, 'body must be {"user-login-permission": true|false}')
        self.login_permission = body["user-login-permission"]
        return JSONResponse({"user-login-permission": self.login_permission})

    async def _overview(self, node: FakeNode, call: Call, req: Request, raw: bytes) -> Response:
        if call.query or raw:
            return error_answer(call, 400, "no query or body expected")
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
            return error_answer(call, 400, "exactly ?export=system_config|user_config, no body")
        if call.query[0][1] not in kinds:
            return error_answer(call, 400, f"unknown export {call.query[0][1]!r}")
        # encodebytes puts a line break after every 76 characters
        text = base64.encodebytes(export_bytes(node.name, call.query[0][1])).decode()
        if self.knobs.crlf:
            text = text.replace("\n", "\r\n")
        return PlainTextResponse(text)

    async def _configuration(
        self, node: FakeNode, call: Call, req: Request, raw: bytes
    ) -> Response:
        if raw or call.query:
            return error_answer(call, 400, "a configuration read takes no query and no body")
        found = TREE.get(call.path.removeprefix(API))
        return error_answer(call, 404, "unknown resource") if found is None else JSONResponse(found)

    async def _install(self, node: FakeNode, call: Call, req: Request, raw: bytes) -> Response:
        if self.knobs.assumed_status is not None:
            return error_answer(call, self.knobs.assumed_status, "not supported")
        if call.query or not req.headers.get("content-type", "").startswith("multipart/form-data"):
            return error_answer(call, 400, "multipart/form-data expected, no query")
        async with req.form() as form:
            upload = form.get("package")
            if set(form.keys()) != {"package"} or not isinstance(upload, UploadFile):
                return error_answer(call, 400, "exactly one multipart field: the file in 'package'")
            digest = hashlib.sha256(await upload.read()).hexdigest()
        call.body = {"package": digest}
        if digest not in self.packages:
            return error_answer(call, 400, "not a valid package")
        if self._upgrade is not None and not self._upgrade.done():
            return error_answer(call, 422, "an upgrade is already in progress")
        if self.mode == "active-passive" and node.name != self.home:
            return error_answer(call, 422, "install on the active node")
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


def error_answer(call: Call, status: int, note: str) -> Response:
    call.note = note
    return JSONResponse({"message": note}, status_code=status)
