"""The PPS REST client: `jobs.appliance.protocol.Appliance` for one cluster over httpx.

Makes exactly the calls of PPS-API.md. Transport, authentication, retries and error
mapping live in `jobs/appliance/transport.py`; answer parsing in `jobs/appliance/parse.py`.
The [assumed]
writes (`PUT active-users`, `POST maintenance/upgrade`) and the rollback (`POST
maintenance`, whose answer is assumed) are the only calls that can raise `Unsupported`;
the steps then switch to operator-assisted mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from jobs.appliance.config_tree import ConfigTree, TreeLimits, walk_tree
from jobs.appliance.parse import (
    AnswerError,
    decode_export,
    parse_active_users_page,
    parse_healthcheck,
    parse_overview,
    parse_system_info,
)
from jobs.appliance.policy import Limits, MiB, RetryPolicy, Timeouts, log
from jobs.appliance.protocol import ActiveUsers, ExportKind, Overview, Rejected, SystemInfo
from jobs.appliance.transport import API, PpsSession
from jobs.config.clock import Clock
from jobs.config.inventory import Cluster
from jobs.config.settings import Settings

PAGE_SIZE = 200  # active-users default page size (PPS-API.md)
MAX_PAGES = 500  # a runaway guard: 100 000 sessions
EXPORT_NAMES: dict[str, str] = {"system": "system_config", "user": "user_config"}
HEALTHCHECK_PATH = "/dana-na/healthcheck/healthcheck.cgi"


class PpsClient:
    """`Appliance` over HTTP for one cluster. Targets are node names or `protocol.VIP`."""

    def __init__(
        self,
        cluster: Cluster,
        username: str,
        password: str,
        *,
        timeouts: Timeouts | None = None,
        limits: Limits | None = None,
        retry: RetryPolicy | None = None,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.cluster = cluster
        self.page_size = page_size
        self.session = PpsSession(
            cluster,
            username,
            password,
            timeouts=timeouts,
            limits=limits,
            retry=retry,
            clock=clock,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"PpsClient(cluster={self.cluster.name!r})"

    async def aclose(self) -> None:
        await self.session.aclose()

    async def __aenter__(self) -> PpsClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    # -- reads ----------------------------------------------------------------------

    async def _get_json(
        self, node: str, path: str, params: Mapping[str, str | int] | None = None
    ) -> Any:
        resp = await self.session.call(node, "GET", path, params=params, idempotent=True)
        try:
            return resp.json()
        except ValueError:
            raise Rejected(node, resp.status_code, f"{path}: answer is not JSON") from None

    async def system_info(self, node: str) -> SystemInfo:
        """`GET system/system-information`."""
        data = await self._get_json(node, "system/system-information")
        try:
            return parse_system_info(data)
        except AnswerError as exc:
            raise Rejected(node, 200, str(exc)) from None

    async def overview(self, node: str) -> Overview:
        """`GET system/status/overview`."""
        data = await self._get_json(node, "system/status/overview")
        try:
            return parse_overview(data)
        except AnswerError as exc:
            raise Rejected(node, 200, str(exc)) from None

    async def active_users(self, node: str) -> ActiveUsers:
        """`GET system/active-users`, paged (DESIGN §4.9); sessions = total matched."""
        start, counted = 1, 0
        total: int | None = None
        permission = True
        for _ in range(MAX_PAGES):
            data = await self._get_json(
                node, "system/active-users", {"number": self.page_size, "start": start}
            )
            try:
                page = parse_active_users_page(data)
            except AnswerError as exc:
                raise Rejected(node, 200, str(exc)) from None
            permission = page.login_permission
            if page.total is not None:
                total = page.total
            counted += page.returned
            if (
                page.is_last
                or page.returned < self.page_size
                or (total is not None and counted >= total)
            ):
                break
            start += page.returned
        return ActiveUsers(
            sessions=total if total is not None else counted, login_permission=permission
        )

    async def healthcheck(self, node: str) -> dict[str, str]:
        """`GET healthcheck.cgi?status=all` (no auth): the cheap "is it serving" probe."""
        text = await self.session.get_text(node, HEALTHCHECK_PATH, {"status": "all"})
        return parse_healthcheck(text)

    async def config_tree(self, node: str, limits: TreeLimits) -> ConfigTree:
        """`GET configuration` and the linked subtrees, read-only, within `limits`."""

        async def fetch(href: str) -> tuple[Any, int]:
            path = href.removeprefix(API)  # `href`s are absolute paths
            resp = await self.session.call(node, "GET", path, idempotent=True)
            text = resp.text
            try:
                return json.loads(text), len(text.encode())
            except ValueError:
                raise Rejected(node, resp.status_code, f"{path}: answer is not JSON") from None

        return await walk_tree(fetch, limits, self.session.clock, node)

    # -- writes (never retried blindly; the steps read back) -------------------------

    async def set_login_permission(self, node: str, enabled: bool) -> None:
        """Disable/Enable All Users: `PUT system/active-users` [assumed]."""
        log().info(
            "pps.write",
            cluster=self.cluster.name,
            node=node,
            call="set_login_permission",
            enabled=enabled,
        )
        await self.session.call(
            node,
            "PUT",
            "system/active-users",
            json_body={"user-login-permission": enabled},
            idempotent=False,
            assumed=True,
        )

    async def export_config(self, node: str, kind: ExportKind) -> bytes:
        """`POST system/binary-configuration?export=…`: base64 text, decoded; empty refused."""
        export = EXPORT_NAMES[kind]
        log().info("pps.write", cluster=self.cluster.name, node=node, call="export", kind=kind)
        session = self.session
        resp = await session.call(
            node,
            "POST",
            "system/binary-configuration",
            params={"export": export},
            idempotent=False,
            http_timeout=session.timeouts.for_transfer(),
            deadline=session.timeouts.transfer,
            max_bytes=session.limits.export,
        )
        try:
            return decode_export(resp.body)
        except AnswerError as exc:
            raise Rejected(node, resp.status_code, f"{export}: {exc}") from None

    async def install(self, node: str, package: Path) -> None:
        """Upload `package` (multipart field `package`) and install now [assumed].

        Returns on 202/200. 422 → `Rejected(422)` (passive node, or already installing).
        """
        path = Path(package)
        if not await asyncio.to_thread(path.is_file):
            raise Rejected(node, 0, f"package file {path.name} not found")

        def files(stack: contextlib.ExitStack) -> Mapping[str, Any]:
            handle = stack.enter_context(path.open("rb"))
            return {"package": (path.name, handle, "application/octet-stream")}

        log().info(
            "pps.write", cluster=self.cluster.name, node=node, call="install", package=path.name
        )
        await self.session.call(
            node,
            "POST",
            "system/maintenance/upgrade",
            files=files,
            idempotent=False,
            assumed=True,
            http_timeout=self.session.timeouts.for_transfer(),
            deadline=self.session.timeouts.transfer,
            # A fresh key first: a key expiring mid-upload would cost a second upload.
            fresh_key=True,
        )

    async def rollback(self, node: str) -> None:
        """Boot the other partition: `POST system/maintenance {"operation": "rollback"}`.

        Only `/pps rollback` calls it. Returns on 202/200; 422 → `Rejected(422)` (no
        rollback partition, or busy); 404/405/501 → `Unsupported` (its answer is assumed).
        """
        log().info("pps.write", cluster=self.cluster.name, node=node, call="rollback")
        await self.session.call(
            node,
            "POST",
            "system/maintenance",
            json_body={"operation": "rollback"},
            idempotent=False,
            assumed=True,
        )


def make_appliance(
    cluster: Cluster,
    *,
    env: Mapping[str, str] | None = None,
    settings: Settings | None = None,
    clock: Clock | None = None,
) -> PpsClient:
    """The production `Appliance` for one cluster; credentials come from `env` (os.environ).

    Retry backoff and the connect/read timeouts are scaled to the polling interval, so that
    a node that hangs instead of refusing connections while it reboots (DESIGN §4.11) costs
    a few polls, not minutes. At the default 10 s poll they stay at 5 s connect / 20 s read.
    The whole-call deadlines and the export size cap come from the settings.
    """
    username, password = cluster.credentials(env)
    retry = RetryPolicy()
    timeouts = Timeouts()
    limits = Limits()
    if settings is not None:
        poll = settings.PPS_POLL_SECONDS
        base = min(RetryPolicy.base, poll / 10)
        retry = RetryPolicy(base=base, cap=max(base, min(RetryPolicy.cap, poll)))
        timeouts = Timeouts(
            connect=min(Timeouts.connect, max(1.0, poll)),
            read=min(Timeouts.read, max(2.0, 2 * poll)),
            total=settings.PPS_CALL_TIMEOUT_SECONDS,
            transfer=settings.PPS_TRANSFER_TIMEOUT_SECONDS,
        )
        limits = Limits(export=settings.PPS_EXPORT_MAX_MB * MiB)
    return PpsClient(
        cluster,
        username,
        password,
        timeouts=timeouts,
        limits=limits,
        retry=retry,
        clock=clock,
    )
