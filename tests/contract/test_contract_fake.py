"""The fake itself is strict: what it refuses, and that `undocumented` catches each misuse.

Without these, a contract test could pass because the fake accepts anything.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.contract.contract_fake import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    API,
    REALM,
    VIP,
    FakeCluster,
    Knobs,
)
from tests.contract.contract_support import RUNNING, TARGET, undocumented

ADMIN = (ADMIN_USER, ADMIN_PASSWORD)
PKG = b"package bytes"


@pytest.fixture
async def fake() -> AsyncIterator[FakeCluster]:
    import hashlib

    sha = hashlib.sha256(PKG).hexdigest()
    f = FakeCluster(
        "active-passive",
        ["fk-a", "fk-b"],
        build=RUNNING,
        packages={sha: TARGET},
        vip=True,
        knobs=Knobs(install_s=0.05, reboot_s=0.3, rejoin_s=0.05),
    )
    await f.start()
    yield f
    await f.stop()


async def _key(http: httpx.AsyncClient, base: str) -> str:
    r = await http.post(base + API + "realm_auth", auth=ADMIN, json={"realm": REALM})
    assert r.status_code == 200
    return str(r.json()["api_key"])


async def test_documented_calls_pass(fake: FakeCluster) -> None:
    async with httpx.AsyncClient() as http:
        base = fake.url(VIP)
        key = await _key(http, base)
        r = await http.get(base + API + "system/system-information", auth=(key, ""))
        assert r.json()["system-information"]["host-name"] == "fk-a"
        r = await http.get(
            base + API + "system/active-users", params={"number": 5, "start": 411}, auth=(key, "")
        )
        page = r.json()["active-users"]
        assert page["total-returned-record-number"] == 2 and page["is-last-record"] is True
        r = await http.post(
            base + API + "system/binary-configuration",
            params={"export": "user_config"},
            auth=(key, ""),
        )
        assert r.headers["content-type"].startswith("text/plain") and "\n" in r.text.strip()
        assert base64.b64decode("".join(r.text.split()))
    assert undocumented(fake.calls) == []


async def test_misuse_is_refused_and_reported(fake: FakeCluster) -> None:
    async with httpx.AsyncClient() as http:
        a = fake.url("fk-a")
        key = await _key(http, a)
        rollback = {"json": {"operation": "rollback"}}
        cases: list[tuple[str, str, tuple[str, str] | None, dict[str, Any], int]] = [
            ("GET", "/dana-na/healthcheck/healthcheck.cgi?status=all", None, {}, 404),
            ("GET", API + "system/unknown", (key, ""), {}, 404),
            ("POST", API + "system/maintenance", (key, ""), rollback, 404),
            ("GET", API + "system/system-information", ADMIN, {}, 401),
            ("GET", API + "system/system-information", (key, "x"), {}, 401),
            ("POST", API + "realm_auth", ADMIN, {"json": {"realm": "Users"}}, 400),
            ("GET", API + "auth", ADMIN, {}, 404),  # no legacy login on this variant
            ("GET", API + "system/active-users?start=0", (key, ""), {}, 400),
            ("GET", API + "system/active-users?page=2", (key, ""), {}, 400),
            ("PUT", API + "system/active-users", (key, ""), {"json": {"enabled": False}}, 400),
            ("POST", API + "system/binary-configuration?export=all", (key, ""), {}, 400),
            (
                "POST",
                API + "system/maintenance/upgrade",
                (key, ""),
                {"files": {"file": ("p.pkg", PKG)}},
                400,
            ),
        ]
        for method, path, auth, extra, status in cases:
            r = await http.request(method, a + path, auth=auth, **extra)
            assert r.status_code == status, (method, path, r.text)
        r = await http.post(
            fake.url("fk-b") + API + "system/maintenance/upgrade",
            auth=(await _key(http, fake.url("fk-b")), ""),
            files={"package": ("p.pkg", PKG)},
        )
        assert r.status_code == 422  # the passive node
    bad = undocumented(fake.calls)
    assert len(bad) == len(cases) + 1, bad  # each misuse named once


async def test_reboot_refuses_then_returns_on_the_new_build(fake: FakeCluster) -> None:
    async with httpx.AsyncClient() as http:
        a = fake.url("fk-a")
        key = await _key(http, a)
        r = await http.post(
            a + API + "system/maintenance/upgrade", auth=(key, ""), files={"package": ("p", PKG)}
        )
        assert r.status_code == 202 and r.json() == {"status": "installing"}
        deadline = time.monotonic() + 3
        refused = False
        while fake.nodes["fk-a"].phase != "up" or not refused:
            assert time.monotonic() < deadline, fake.timeline
            try:
                await http.get(a + API + "system/status/overview", auth=(key, ""))
            except (httpx.ReadError, httpx.RemoteProtocolError):
                pass  # in flight on a kept-alive connection as the port closed: ask again
            except httpx.ConnectError:
                refused = True
                # The VIP moved to the passive node meanwhile.
                vip_key = await _key(http, fake.url(VIP))
                r = await http.get(
                    fake.url(VIP) + API + "system/system-information", auth=(vip_key, "")
                )
                assert r.json()["system-information"]["host-name"] == "fk-b"
            await asyncio.sleep(0.02)
        r = await http.get(a + API + "system/status/overview", auth=(key, ""))
        assert r.status_code == 401  # keys died with the reboot
        key = await _key(http, a)
        r = await http.get(a + API + "system/status/overview", auth=(key, ""))
        up = r.json()["uptime"]
        assert up["days"] == up["hours"] == up["minutes"] == 0
        r = await http.get(a + API + "system/system-information", auth=(key, ""))
        body = r.json()
        assert body["software-inventory"]["software"]["build"] == TARGET
        assert body["rollback-partition-information"]["build"] == RUNNING
    assert "vip: fk-a -> fk-b" in fake.timeline


async def test_standalone_lists_no_members() -> None:
    f = FakeCluster("standalone", ["fk-s"], build=RUNNING, packages={})
    await f.start()
    try:
        async with httpx.AsyncClient() as http:
            key = await _key(http, f.url("fk-s"))
            r = await http.get(f.url("fk-s") + API + "system/status/overview", auth=(key, ""))
            assert r.json()["cluster-member-status"] == []
    finally:
        await f.stop()
