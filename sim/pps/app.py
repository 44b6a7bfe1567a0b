"""The appliance REST API of PPS-API.md, served for one node or for an A/P cluster's VIP.

Each listener gets its own Starlette app whose `resolve()` names the node answering: the
node itself, or whichever node holds the VIP. Faults apply here: slow answers, flapping
503s, 404 on the [assumed] writes, refused installs and rollbacks, empty exports, expired
keys, answers drip-fed a byte at a time, huge answers to reads, an install lost in transit
(connection reset, nothing starts), a proxy's 502/504 to an install that did start, and an
unreadable or a huge configuration tree. The `upload_seconds` knob makes an install's
package upload slow (a WAN link): its body is read at an even pace over that many seconds.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartParser
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from sim.pps.config_tree import resource
from sim.pps.listener import ResetConnection, reset_connection
from sim.pps.packages import build_string, read_package_header
from sim.pps.state import SimCluster, SimNode

Resolver = Callable[[], tuple[SimCluster, SimNode] | None]
Starter = Callable[[SimCluster, SimNode, str | None], None]  # (cluster, node, target|None)
Handler = Callable[[Request, SimCluster, SimNode], Awaitable[Response]]

PAGE_SIZE = 200
_ROLLBACK_FAULTS = {404: "Not Found", 405: "Method Not Allowed", 501: "Not Implemented"}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status)


def _basic(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        user, sep, password = base64.b64decode(value).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def _uptime(seconds: float) -> dict[str, int]:
    s = int(seconds)
    return {
        "days": s // 86400,
        "hours": s % 86400 // 3600,
        "minutes": s % 3600 // 60,
        "seconds": s % 60,
    }


def _export_text(cluster: SimCluster, node: SimNode, kind: str) -> str:
    head = f"PPS-SIM-CONFIG {kind} cluster={cluster.name} node={node.name} build={node.build}\n"
    filler = hashlib.sha256(head.encode()).digest() * 64
    return base64.encodebytes(head.encode() + filler).decode()  # lines of 76 chars


def node_app(resolve: Resolver, start: Starter, *, via_vip: bool = False) -> Starlette:
    """The API of one listener (a node port, or the VIP port when `via_vip`)."""

    def wrap(handler: Handler, auth: str | None, write: str | None = None) -> Any:
        async def endpoint(request: Request) -> Response:
            received = time.time()  # the write log's `received_at` (benchmarks time clicks to it)
            target = resolve()
            if target is None:  # the port is being closed; a real VIP would not answer
                return _error(503, "no node behind this address")
            cluster, node = target
            node.requests += 1
            call = f"{request.method} {request.url.path}"
            node.calls[call] = node.calls.get(call, 0) + 1
            f = cluster.faults
            if f.slow_seconds > 0 and (not f.slow_nodes or node.name in f.slow_nodes):
                await asyncio.sleep(f.slow_seconds)
            response: Response
            try:
                if f.flap_503 > 0 and (node.requests - 1) % (f.flap_503 + 1) < f.flap_503:
                    response = _error(503, "REST service unavailable")
                elif auth == "key" and not _key_ok(request, cluster, node):
                    response = _error(401, "Invalid or expired API key")
                else:
                    response = await handler(request, cluster, node)
            except ResetConnection:
                if write is not None:  # status 0: the caller got no answer at all
                    cluster.record_write(node.name, write, _detail(request), 0, via_vip)
                reset_connection(request.scope)
                await asyncio.sleep(0)  # the connection is gone before an answer could go
                return _error(500, "connection reset")  # never delivered
            if write is not None:
                cluster.record_write(
                    node.name, write, _detail(request), response.status_code, via_vip, received
                )
            return _shaped(request, response, cluster, node)

        return endpoint

    async def realm_auth(request: Request, cluster: SimCluster, node: SimNode) -> Response:
        if not cluster.knobs.realm_auth:
            return _error(404, "Not Found")
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "body must be JSON")
        if not isinstance(body, dict) or body.get("realm") != cluster.realm:
            return _error(401, "authentication failed")
        return _admin_login(request, cluster, node)

    async def legacy_auth(request: Request, cluster: SimCluster, node: SimNode) -> Response:
        if not cluster.legacy_auth_enabled(node):
            return _error(404, "Not Found")
        return _admin_login(request, cluster, node)

    async def system_information(request: Request, cluster: SimCluster, node: SimNode) -> Response:
        digest = hashlib.sha256(f"{cluster.name}/{node.name}".encode()).hexdigest()
        body: dict[str, Any] = {
            "system-information": {
                "host-name": node.name,
                "machine-id": digest[:24],
                "serial-number": "SIM" + digest[24:34].upper(),
                "model": "PSA-7000v",
            },
            "software-inventory": {"software": {"build": node.build}},
        }
        if node.rollback_build:
            body["rollback-partition-information"] = {
                "build": node.rollback_build,
                "os-name": "IVE-OS",
                "os-version": node.rollback_build.split(" ")[0],
            }
        return JSONResponse(body)

    async def get_active_users(request: Request, cluster: SimCluster, node: SimNode) -> Response:
        try:
            number = int(request.query_params.get("number", PAGE_SIZE))
            start = int(request.query_params.get("start", 1))
        except ValueError:
            return _error(400, "number and start must be integers")
        if number < 1 or start < 1:
            return _error(400, "number and start must be >= 1")
        total = len(cluster.sessions)
        page = cluster.sessions[start - 1 : start - 1 + number]
        return JSONResponse(
            {
                "active-users": {
                    "active-user-records": {"active-user-record": page},
                    "total-matched-record-number": total,
                    "total-returned-record-number": len(page),
                    "user-login-permission": cluster.login_permission,
                    "is-last-record": start - 1 + len(page) >= total,
                }
            }
        )

    async def put_active_users(request: Request, cluster: SimCluster, node: SimNode) -> Response:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "body must be JSON")
        value = body.get("user-login-permission") if isinstance(body, dict) else None
        request.state.detail = str(value).lower()
        if cluster.faults.assumed_404:
            return _error(404, "Not Found")
        if not isinstance(value, bool):
            return _error(400, "user-login-permission must be true or false")
        cluster.login_permission = value
        cluster.event(f"{node.name}: user logins {'enabled' if value else 'disabled'}")
        return JSONResponse({"user-login-permission": value})

    async def overview(request: Request, cluster: SimCluster, node: SimNode) -> Response:
        return JSONResponse(
            {
                "cluster-member-status": cluster.member_status(),
                "uptime": _uptime(node.uptime()),
                "system-date-and-time": datetime.now(UTC).strftime("%Y/%m/%d %H:%M:%S UTC"),
                "last-config-update": {"device": node.name},
            }
        )

    async def export(request: Request, cluster: SimCluster, node: SimNode) -> Response:
        kind = request.query_params.get("export", "")
        request.state.detail = kind
        if kind not in ("system_config", "user_config"):
            return _error(400, "export must be system_config or user_config")
        text = "" if cluster.faults.empty_export else _export_text(cluster, node, kind)
        return PlainTextResponse(text)

    async def upgrade(request: Request, cluster: SimCluster, node: SimNode) -> Response:
        if cluster.faults.assumed_404:
            return _error(404, "Not Found")
        form = await _upload_form(request, cluster.knobs.upload_seconds)
        upload = form.get("package")
        if not isinstance(upload, UploadFile):
            return _error(400, "multipart field 'package' is missing")
        header = read_package_header(await upload.read(256))
        await form.close()
        if header is None:
            return _error(422, "not a valid package")
        target = build_string(*header)
        request.state.detail = target
        f = cluster.faults
        if f.install_lost > 0:  # the upload arrived whole, the appliance never acted on it
            f.install_lost -= 1
            cluster.event(f"{node.name}: install of {target} lost in transit")
            raise ResetConnection
        if f.install_status is not None:
            return _error(f.install_status, "package installation refused")
        refusal = cluster.install_refusal(node)
        if refusal is not None:
            return _error(422, refusal)
        cluster.upgrading = True
        cluster.upgrade_target = target
        start(cluster, node, target)
        if f.install_proxy_status is not None:  # a proxy gave up waiting; the node goes on
            status = f.install_proxy_status
            return PlainTextResponse(f"{status} Bad Gateway (proxy)", status_code=status)
        return JSONResponse({"status": "installing"}, status_code=202)

    async def maintenance(request: Request, cluster: SimCluster, node: SimNode) -> Response:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "body must be JSON")
        op = body.get("operation") if isinstance(body, dict) else None
        request.state.detail = node.rollback_build or str(op)
        if op != "rollback":
            return _error(400, "operation must be rollback")
        status = cluster.faults.rollback_status
        if status is not None:
            return _error(status, _ROLLBACK_FAULTS.get(status, "rollback refused"))
        if node.rollback_build is None:
            return _error(422, "no rollback partition")
        refusal = cluster.install_refusal(node, "roll back")
        if refusal is not None:
            return _error(422, refusal)
        cluster.upgrading = True
        cluster.upgrade_target = node.rollback_build
        start(cluster, node, None)
        return JSONResponse({"status": "rolling back"}, status_code=202)

    async def configuration(request: Request, cluster: SimCluster, node: SimNode) -> Response:
        if cluster.faults.config_unreadable:
            return _error(500, "REST service is down")
        found = resource(
            cluster.config, request.path_params.get("path", ""), cluster.faults.config_huge_objects
        )
        return _error(404, "Not Found") if found is None else JSONResponse(found)

    async def healthcheck(request: Request, cluster: SimCluster, node: SimNode) -> Response:
        lines = {
            "CPU-UTILIZATION": "3",
            "SWAP-UTILIZATION": "0",
            "DISK-UTILIZATION": "12",
            "SSL-CONNECTION-COUNT": str(len(cluster.sessions)),
            "PLATFORM": "PSA-7000v",
            "MAX-LICENSED-USERS": "25000",
            "USER-COUNT": str(sum(s["login-node"] == node.name for s in cluster.sessions)),
            "CLUSTER-NAME": cluster.name if cluster.mode != "standalone" else "",
        }
        return PlainTextResponse("".join(f"{k}={v};\n" for k, v in lines.items()))

    async def not_found(request: Request) -> Response:
        return _error(404, "Not Found")

    api = "/api/v1/"
    routes = [
        Route(api + "realm_auth", wrap(realm_auth, None), methods=["POST"]),
        Route(api + "auth", wrap(legacy_auth, None), methods=["GET"]),
        Route(api + "system/system-information", wrap(system_information, "key")),
        Route(api + "system/active-users", wrap(get_active_users, "key"), methods=["GET"]),
        Route(
            api + "system/active-users",
            wrap(put_active_users, "key", "login_permission"),
            methods=["PUT"],
        ),
        Route(api + "system/status/overview", wrap(overview, "key")),
        Route(
            api + "system/binary-configuration",
            wrap(export, "key", "export"),
            methods=["POST"],
        ),
        Route(
            api + "system/maintenance/upgrade",
            wrap(upgrade, "key", "install"),
            methods=["POST"],
        ),
        Route(api + "system/maintenance", wrap(maintenance, "key", "rollback"), methods=["POST"]),
        Route(api + "configuration", wrap(configuration, "key")),
        Route(api + "configuration/{path:path}", wrap(configuration, "key")),
        Route("/dana-na/healthcheck/healthcheck.cgi", wrap(healthcheck, None)),
        Route("/{path:path}", not_found, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
    ]
    return Starlette(routes=routes)


async def _upload_form(request: Request, seconds: float) -> FormData:
    """The install's multipart form. With `seconds` > 0 the body is read at an even pace
    (by Content-Length) so that the upload takes that long from the handler's start, as
    over a slow link: uvicorn stops reading the socket while its buffer is full, so the
    client's sending slows down too, and the answer comes only once the upload is done."""
    if seconds <= 0:
        return await request.form()
    started = time.monotonic()
    total = int(request.headers.get("content-length") or 0)
    chunks: list[bytes] = []
    got = 0
    async for chunk in request.stream():
        chunks.append(chunk)
        got += len(chunk)
        if total > 0:
            await asyncio.sleep(max(0.0, started + seconds * min(1.0, got / total)
                                    - time.monotonic()))
    await asyncio.sleep(max(0.0, started + seconds - time.monotonic()))
    body = b"".join(chunks)

    async def replay() -> AsyncGenerator[bytes, None]:
        yield body

    return await MultiPartParser(request.headers, replay()).parse()


def _detail(request: Request) -> str:
    return str(request.state.detail) if hasattr(request.state, "detail") else ""


def _shaped(request: Request, response: Response, cluster: SimCluster, node: SimNode) -> Response:
    """Apply the answer-shaping faults: a huge JSON answer to a read, or a drip-fed one."""
    f = cluster.faults
    media = response.headers.get("content-type", "")
    if (
        f.huge_reply_bytes > 0
        and request.method == "GET"
        and response.status_code == 200
        and media.startswith("application/json")
    ):
        return huge_answer(bytes(response.body), f.huge_reply_bytes)
    if f.drip_seconds > 0 and (not f.drip_nodes or node.name in f.drip_nodes):
        return drip_answer(response, f.drip_seconds)
    return response


HUGE_CHUNK = 1 << 20


def huge_answer(body: bytes, size: int) -> Response:
    """`body` (a JSON object) padded with a `"padding"` string to about `size` bytes,
    streamed in 1 MiB chunks without a Content-Length (the whole never sits in memory)."""
    head = b'{"padding":"'
    tail = b'",' + body[1:] if len(body) > 2 else b'"}'
    pad = max(0, size - len(head) - len(tail))
    block = b"x" * HUGE_CHUNK

    async def chunks() -> AsyncIterator[bytes]:
        yield head
        left = pad
        while left > 0:
            n = min(left, HUGE_CHUNK)
            yield block if n == HUGE_CHUNK else block[:n]
            left -= n
        yield tail

    return StreamingResponse(chunks(), media_type="application/json")


def drip_answer(response: Response, seconds: float) -> Response:
    """The same answer, its body sent one byte every `seconds` (headers at once)."""
    body = bytes(response.body)

    async def one_byte_at_a_time() -> AsyncIterator[bytes]:
        for i in range(len(body)):
            yield body[i : i + 1]
            await asyncio.sleep(seconds)

    headers = {"content-length": str(len(body))}
    media = response.headers.get("content-type")
    return StreamingResponse(
        one_byte_at_a_time(), status_code=response.status_code, headers=headers, media_type=media
    )


def _key_ok(request: Request, cluster: SimCluster, node: SimNode) -> bool:
    creds = _basic(request)
    return creds is not None and creds[1] == "" and cluster.key_valid(node, creds[0])


def _admin_login(request: Request, cluster: SimCluster, node: SimNode) -> Response:
    creds = _basic(request)
    if creds != (cluster.username, cluster.password):
        return _error(401, "authentication failed")
    return JSONResponse({"api_key": cluster.issue_key(node)})
