"""Narrow unit tests: answer parsing (pure), retry delays, status mapping on a mock transport.

The behaviour over real HTTP is in test_appliance_client.py; here are the shapes and codes
the simulator never produces (numbers as strings, one record unwrapped, 405/501, 200 on
install, an error body that echoes the key).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobs.appliance.client import PpsClient
from jobs.appliance.parse import (
    AnswerError,
    decode_export,
    parse_active_users_page,
    parse_healthcheck,
    parse_overview,
    parse_system_info,
)
from jobs.appliance.policy import RetryPolicy, Timeouts, describe_transport_error
from jobs.appliance.protocol import AuthFailed, Rejected, Unsupported
from jobs.config.inventory import Cluster, Node
from tests.fakes import FakeClock

CLUSTER = Cluster(
    name="mock",
    mode="standalone",
    nodes=(Node("n1", "https://n1.example"),),
    username_env="U",
    password_env="P",
)


def test_system_info_with_and_without_rollback() -> None:
    full = {
        "system-information": {"host-name": "east-a"},
        "software-inventory": {"software": {"build": "9.1R17 (build 27583)"}},
        "rollback-partition-information": {"build": "9.1R16 (build 26213)"},
    }
    info = parse_system_info(full)
    assert (info.host_name, info.build, info.rollback_build) == (
        "east-a",
        "9.1R17 (build 27583)",
        "9.1R16 (build 26213)",
    )
    fresh = {k: v for k, v in full.items() if k != "rollback-partition-information"}
    assert parse_system_info(fresh).rollback_build is None
    with pytest.raises(AnswerError, match="software-inventory"):
        parse_system_info({"system-information": {}})


def test_overview_members_and_uptime() -> None:
    ov = parse_overview(
        {
            "cluster-member-status": [
                {"name": "a", "enabled": True, "statuscode": "Leader"},
                {"name": "b", "enabled": "false", "statuscode": "Disabled", "notes": "x"},
            ],
            "uptime": {"days": 1, "hours": "2", "minutes": 3, "seconds": 4},
        }
    )
    assert [(m.name, m.enabled, m.status, m.in_cluster) for m in ov.members] == [
        ("a", True, "Leader", True),
        ("b", False, "Disabled", False),
    ]
    assert ov.uptime_seconds == 86400 + 7200 + 180 + 4
    assert parse_overview({"cluster-member-status": []}).members == ()
    with pytest.raises(AnswerError):
        parse_overview({"cluster-member-status": {"name": "a"}})


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {
                "total-matched-record-number": "412",
                "total-returned-record-number": "200",
                "user-login-permission": "true",
                "is-last-record": "false",
                "active-user-records": {"active-user-record": [{}] * 200},
            },
            (200, 412, True, False),
        ),
        (
            {
                "user-login-permission": False,
                "active-user-records": {"active-user-record": {"active-user-name": "solo"}},
            },
            (1, None, False, False),
        ),
        ({"user-login-permission": True, "active-user-records": {}}, (0, None, True, False)),
    ],
)
def test_active_users_page(body: dict[str, Any], expected: tuple[Any, ...]) -> None:
    page = parse_active_users_page({"active-users": body})
    assert (page.returned, page.total, page.login_permission, page.is_last) == expected


def test_active_users_without_permission_is_refused() -> None:
    with pytest.raises(AnswerError, match="user-login-permission"):
        parse_active_users_page({"active-users": {"total-matched-record-number": 3}})


def test_decode_export() -> None:
    raw = bytes(range(256)) * 20
    text = base64.encodebytes(raw).decode()  # 76-character lines
    assert "\n" in text.strip()
    assert decode_export(text) == raw
    assert decode_export(text.replace("\n", "\r\n")) == raw
    assert decode_export(text.encode()) == raw  # the bytes as read off the wire
    assert decode_export(b"aGVs\r\nbG8=\t\n") == b"hello"
    for bad, why in (("", "empty"), (" \n ", "empty"), ("!!!notbase64", "not base64"),
                     ("aGVs\u00e9bG8=", "not base64")):
        with pytest.raises(AnswerError, match=why):
            decode_export(bad)


def test_healthcheck_lines() -> None:
    text = "CPU-UTILIZATION=3;\nUSER-COUNT=12;\nCLUSTER-NAME=;\nnonsense\n"
    assert parse_healthcheck(text) == {
        "CPU-UTILIZATION": "3",
        "USER-COUNT": "12",
        "CLUSTER-NAME": "",
    }


@pytest.mark.parametrize("retry", range(6))
def test_retry_delay_is_jittered_and_capped(retry: int) -> None:
    policy = RetryPolicy(attempts=6, base=0.5, cap=4.0)
    step = min(4.0, 0.5 * 2**retry)
    assert policy.delay(retry, 0.0) == pytest.approx(step / 2)
    assert policy.delay(retry, 1.0) == pytest.approx(step)


def test_transport_error_reasons() -> None:
    t = Timeouts(connect=3.0)
    req = httpx.Request("GET", "https://n1.example/")
    assert describe_transport_error(httpx.ConnectTimeout("x", request=req), t) == (
        "connect timed out after 3 s"
    )
    assert "read timeout" in describe_transport_error(httpx.ReadTimeout("x", request=req), t)
    refused = httpx.ConnectError("All connection attempts failed", request=req)
    refused.__cause__ = ConnectionRefusedError(111, "refused")
    assert describe_transport_error(refused, t) == "connection refused"
    reset = httpx.RemoteProtocolError("Server disconnected", request=req)
    assert "reset or closed" in describe_transport_error(reset, t)


# -- status mapping on a mock transport (narrow: codes the simulator does not produce) -----


def _client(handler: Any) -> PpsClient:
    return PpsClient(
        CLUSTER,
        "admin",
        "pw-secret",
        transport=httpx.MockTransport(handler),
        retry=RetryPolicy(attempts=3, base=0.01, cap=0.01),
        clock=FakeClock(),
    )


def _with_auth(status_for: dict[str, int], body: Any = None) -> Any:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        seen.append(f"{request.method} {path}")
        if path.endswith("/realm_auth"):
            return httpx.Response(200, json={"api_key": "KEY-abc123"})
        status = status_for.get(f"{request.method} {path}", 200)
        return httpx.Response(status, json=body if body is not None else {"message": "no"})

    handler.seen = seen  # type: ignore[attr-defined]
    return handler


@pytest.mark.parametrize("status", [404, 405, 501])
async def test_assumed_writes_map_404_405_501_to_unsupported(status: int, tmp_path: Path) -> None:
    pkg = tmp_path / "p.pkg"
    pkg.write_bytes(b"x")
    handler = _with_auth(
        {
            "PUT /api/v1/system/active-users": status,
            "POST /api/v1/system/maintenance/upgrade": status,
            "POST /api/v1/system/binary-configuration": status,
        }
    )
    async with _client(handler) as client:
        with pytest.raises(Unsupported):
            await client.set_login_permission("n1", False)
        with pytest.raises(Unsupported):
            await client.install("n1", pkg)
        with pytest.raises(Rejected) as err:  # a [field] call: a plain refusal
            await client.export_config("n1", "system")
    assert err.value.status == status
    writes = [s for s in handler.seen if not s.endswith("realm_auth")]
    assert len(writes) == 3  # each write sent once, whatever the answer


async def test_install_accepts_200_and_sends_multipart(tmp_path: Path) -> None:
    pkg = tmp_path / "pps-9.1R18.pkg"
    pkg.write_bytes(b"PPS package bytes")
    got: dict[str, Any] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/realm_auth"):
            return httpx.Response(200, json={"api_key": "K"})
        got["type"] = request.headers["content-type"]
        got["body"] = request.read()
        return httpx.Response(200, json={"status": "installing"})

    async with _client(handler) as client:
        await client.install("n1", pkg)
    assert got["type"].startswith("multipart/form-data")
    assert b'name="package"; filename="pps-9.1R18.pkg"' in got["body"]
    assert b"PPS package bytes" in got["body"]


async def test_error_text_that_echoes_secrets_is_scrubbed() -> None:
    body = {"message": "bad key KEY-abc123 for admin:pw-secret"}
    handler = _with_auth({"GET /api/v1/system/system-information": 400}, body)
    async with _client(handler) as client:
        with pytest.raises(Rejected) as err:
            await client.system_info("n1")
    assert err.value.status == 400
    assert "KEY-abc123" not in str(err.value) and "pw-secret" not in str(err.value)
    assert "***" in str(err.value)


async def test_forbidden_login_is_auth_failed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"message": "admin locked"})

    async with _client(handler) as client:
        with pytest.raises(AuthFailed, match="refused"):
            await client.overview("n1")


async def test_a_non_json_answer_is_rejected() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/realm_auth"):
            return httpx.Response(200, json={"api_key": "K"})
        return httpx.Response(200, text="<html>login page</html>")

    async with _client(handler) as client:
        with pytest.raises(Rejected, match="not JSON"):
            await client.overview("n1")
