"""A strict fake PPS cluster for the contract tests, written from PPS-API.md and DESIGN §4 only.

Independent of `sim/`: it plays an appliance the way an outside test would. Each node has
its own port (A/P with a VIP: one more port, served by the node holding the VIP). It knows
`realm_auth` (or, in the `legacy` variant, only `GET auth`), the three reads, the
configuration tree, the two exports, `PUT active-users` and `POST maintenance/upgrade`;
anything else answers 404, malformed requests 400. Every request is recorded in
`FakeCluster.calls` with how it authenticated, so tests can assert the client made only
documented calls. An install runs
the KB12940 sequence: install, reboot (port closed: connection refused), back on the new
build with uptime reset and no api keys, rejoin; then the next node. What each call
answers is in contract_answers.py; this module holds the cluster, its ports and its
upgrade sequence.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from tests.contract.contract_answers import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    API,
    OPTIONAL,
    REALM,
    VIP,
    Answers,
    Call,
    FakeNode,
    Knobs,
    error_answer,
    export_bytes,
)
from tests.contract.contract_ports import Port, Rebooting

__all__ = [
    "ADMIN_PASSWORD",
    "ADMIN_USER",
    "API",
    "OPTIONAL",
    "REALM",
    "VIP",
    "Call",
    "FakeCluster",
    "FakeNode",
    "Knobs",
    "export_bytes",
]


class FakeCluster(Answers):
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
            response: Response = error_answer(call, 503, "no node holds the VIP")
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
