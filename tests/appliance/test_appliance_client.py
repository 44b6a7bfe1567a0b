"""The PPS client against the in-process simulator, over real HTTP."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from jobs.appliance.client import PpsClient, make_appliance
from jobs.appliance.protocol import (
    VIP,
    ApplianceError,
    AuthFailed,
    Rejected,
    Unreachable,
    Unsupported,
)
from sim.pps.packages import write_package
from tests.appliance.appliance_support import FAST, client_of, cluster_of
from tests.fakes import FakeClock, make_settings

STANDALONE = {"mode": "standalone", "nodes": ["solo"], "sessions": 3}
AP = {"mode": "active-passive", "nodes": ["east-a", "east-b"], "sessions": 5}


def calls(sim: Any, cluster: str, node: str, call: str) -> int:
    return int(sim.cluster(cluster).node(node).calls.get(call, 0))


async def test_realm_auth_then_api_key_on_every_call(start_sim: Any) -> None:
    sim = await start_sim({"c": STANDALONE})
    async with client_of(sim, "c") as client:
        info = await client.system_info("solo")
        ov = await client.overview("solo")
        users = await client.active_users("solo")
    assert info.host_name == "solo"
    assert info.build == "9.1R17 (build 27583)"
    assert info.rollback_build == "9.1R16 (build 26213)"
    assert ov.members == () and ov.uptime_seconds >= 3 * 86400
    assert (users.sessions, users.login_permission) == (3, True)
    node = sim.cluster("c").node("solo")
    assert node.logins == 1  # one login, the key reused for three calls
    assert node.calls.get("POST /api/v1/realm_auth") == 1
    assert "GET /api/v1/auth" not in node.calls


async def test_legacy_auth_when_realm_auth_is_404(start_sim: Any) -> None:
    sim = await start_sim({"c": {**STANDALONE, "knobs": {"realm_auth": False}}})
    async with client_of(sim, "c") as client:
        info = await client.system_info("solo")
    assert info.host_name == "solo"
    assert calls(sim, "c", "solo", "POST /api/v1/realm_auth") == 1
    assert calls(sim, "c", "solo", "GET /api/v1/auth") == 1


async def test_legacy_auth_is_gone_from_22_7R2_1(start_sim: Any) -> None:
    sim = await start_sim(
        {"c": {**STANDALONE, "build": "22.7R2.3 (build 3431)", "knobs": {"realm_auth": False}}}
    )
    async with client_of(sim, "c") as client:
        with pytest.raises(Rejected, match="realm_auth and auth both answer 404") as err:
            await client.system_info("solo")
    assert err.value.status == 404


async def test_wrong_password_is_auth_failed(start_sim: Any) -> None:
    sim = await start_sim({"c": STANDALONE})
    async with client_of(sim, "c", password="not-the-password") as client:
        with pytest.raises(AuthFailed) as err:
            await client.system_info("solo")
    assert "refused" in str(err.value)
    assert "not-the-password" not in str(err.value)


async def test_missing_credentials_are_auth_failed_naming_the_variables(
    start_sim: Any
) -> None:
    sim = await start_sim({"c": STANDALONE})
    client = make_appliance(cluster_of(sim, "c"), env={})
    async with client:
        with pytest.raises(AuthFailed, match="U, P"):
            await client.system_info("solo")
    assert sim.cluster("c").node("solo").calls == {}


async def test_reauth_once_after_keys_expire(start_sim: Any) -> None:
    sim = await start_sim({"c": STANDALONE})
    async with client_of(sim, "c") as client:
        await client.system_info("solo")
        sim.cluster("c").expire_keys()
        info = await client.system_info("solo")
    assert info.host_name == "solo"
    node = sim.cluster("c").node("solo")
    assert node.logins == 2
    assert node.calls["GET /api/v1/system/system-information"] == 3  # ok, 401, ok


async def test_key_ttl_expiry_and_write_resent_after_401(start_sim: Any) -> None:
    sim = await start_sim({"c": {**STANDALONE, "knobs": {"key_ttl_seconds": 0.2}}})
    async with client_of(sim, "c") as client:
        await client.system_info("solo")
        await asyncio.sleep(0.3)
        await client.set_login_permission("solo", False)
    c = sim.cluster("c")
    assert c.login_permission is False
    assert [(e.call, e.status) for e in c.log] == [
        ("login_permission", 401),
        ("login_permission", 200),
    ]


async def test_401_after_a_fresh_login_is_auth_failed(start_sim: Any) -> None:
    sim = await start_sim({"c": {**STANDALONE, "knobs": {"key_ttl_seconds": 0.0}}})
    async with client_of(sim, "c") as client:
        with pytest.raises(AuthFailed, match="fresh login"):
            await client.system_info("solo")
    assert sim.cluster("c").node("solo").logins == 2


@pytest.mark.parametrize(
    ("sessions", "pages"), [(412, 3), (400, 2), (200, 1), (199, 1), (0, 1), (1, 1)]
)
async def test_active_users_paging(start_sim: Any, sessions: int, pages: int) -> None:
    sim = await start_sim({"c": {**STANDALONE, "sessions": sessions}})
    async with client_of(sim, "c") as client:
        users = await client.active_users("solo")
    assert users.sessions == sessions
    assert calls(sim, "c", "solo", "GET /api/v1/system/active-users") == pages


class RecordingTransport(httpx.AsyncHTTPTransport):
    """A real transport that remembers the query of every active-users request."""

    def __init__(self) -> None:
        super().__init__()
        self.pages: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/active-users"):
            q = request.url.params
            self.pages.append(f"{q['start']}/{q['number']}")
        return await super().handle_async_request(request)


async def test_paging_uses_1_based_start(start_sim: Any) -> None:
    sim = await start_sim({"c": {**STANDALONE, "sessions": 412}})
    spy = RecordingTransport()
    c = sim.cluster("c")
    async with PpsClient(cluster_of(sim, "c"), c.username, c.password, transport=spy) as cl:
        assert (await cl.active_users("solo")).sessions == 412
    assert spy.pages == ["1/200", "201/200", "401/200"]


async def test_reads_retry_through_flapping_503_and_writes_do_not(start_sim: Any) -> None:
    sim = await start_sim({"c": {**STANDALONE, "faults": {"flap_503": 2}}})
    clock = FakeClock()
    async with client_of(sim, "c", attempts=3, clock=clock) as client:
        info = await client.system_info("solo")  # login 503,503,ok; GET 503,503,ok
        assert info.host_name == "solo"
        assert clock.monotonic() > 0  # it backed off (on the fake clock)
        with pytest.raises(Rejected) as err:
            await client.set_login_permission("solo", False)
    assert err.value.status == 503
    c = sim.cluster("c")
    assert [(e.call, e.status) for e in c.log] == [("login_permission", 503)]
    assert c.login_permission is True
    assert calls(sim, "c", "solo", "GET /api/v1/system/system-information") == 3


async def test_reads_give_up_after_the_attempts(start_sim: Any) -> None:
    sim = await start_sim({"c": {**STANDALONE, "faults": {"flap_503": 5}}})
    async with client_of(sim, "c", attempts=2) as client:
        with pytest.raises(Rejected) as err:
            await client.system_info("solo")
    assert err.value.status == 503


async def test_slow_node_times_out_as_unreachable(start_sim: Any) -> None:
    sim = await start_sim({"c": {**AP, "faults": {"slow_seconds": 1.0, "slow_nodes": ["east-b"]}}})
    async with client_of(sim, "c", read=0.2) as client:
        assert (await client.system_info("east-a")).host_name == "east-a"
        t0 = time.monotonic()
        with pytest.raises(Unreachable, match="read timeout"):
            await client.system_info("east-b")
        assert time.monotonic() - t0 < 0.9  # a read timeout is not retried


async def test_powered_off_node_is_unreachable_connection_refused(start_sim: Any) -> None:
    sim = await start_sim({"c": AP})
    await sim.power("c", "east-b", False)
    clock = FakeClock()
    async with client_of(sim, "c", clock=clock) as client:
        with pytest.raises(Unreachable, match="connection refused") as err:
            await client.overview("east-b")
        assert err.value.node == "east-b"
        assert clock.monotonic() > 0  # connect errors on reads are retried
        ov = await client.overview("east-a")
    assert {m.name: m.status for m in ov.members} == {
        "east-a": "Leader",
        "east-b": "Enabled, Unreachable",
    }


async def test_install_accepted_then_unreachable_then_new_build(
    start_sim: Any, tmp_path: Path
) -> None:
    sim = await start_sim({"c": {**STANDALONE, "knobs": FAST}})
    pkg = tmp_path / "pps-9.1R18.pkg"
    write_package(pkg, "9.1R18", 29865)
    seen: list[str] = []
    async with client_of(sim, "c", attempts=1) as client:
        up_before = (await client.overview("solo")).uptime_seconds
        await client.install("solo", pkg)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                build = (await client.system_info("solo")).build
                state = build
            except Unreachable:
                state = "down"
            if not seen or seen[-1] != state:
                seen.append(state)
            if state.startswith("9.1R18"):
                break
            await asyncio.sleep(0.02)
        up_after = (await client.overview("solo")).uptime_seconds
    assert seen == ["9.1R17 (build 27583)", "down", "9.1R18 (build 29865)"]
    assert up_after < up_before
    counts = sim.cluster("c").write_counts()
    assert counts == {"solo": {"install": 1}}


async def test_install_on_the_passive_node_is_422(start_sim: Any, tmp_path: Path) -> None:
    sim = await start_sim({"c": {**AP, "knobs": FAST}})
    pkg = tmp_path / "p.pkg"
    write_package(pkg, "9.1R18", 29865)
    async with client_of(sim, "c") as client:
        with pytest.raises(Rejected) as err:
            await client.install("east-b", pkg)
        assert err.value.status == 422
        assert "passive" in str(err.value)
        await client.install("east-a", pkg)
        with pytest.raises(Rejected) as again:
            await client.install(VIP, pkg)
        assert again.value.status == 422
        assert "in progress" in str(again.value)
    log = [(e.node, e.status) for e in sim.cluster("c").log]
    assert log == [("east-b", 422), ("east-a", 202), ("east-a", 422)]


@pytest.mark.parametrize("status", [422, 500])
async def test_refused_install_is_rejected_and_sent_once(
    start_sim: Any, tmp_path: Path, status: int
) -> None:
    sim = await start_sim({"c": {**STANDALONE, "faults": {"install_status": status}}})
    pkg = tmp_path / "p.pkg"
    write_package(pkg, "9.1R18", 29865)
    async with client_of(sim, "c") as client:
        with pytest.raises(Rejected) as err:
            await client.install("solo", pkg)
    assert err.value.status == status
    assert sim.cluster("c").write_counts() == {"solo": {"install": 1}}
    assert sim.cluster("c").node("solo").build == "9.1R17 (build 27583)"


async def test_assumed_writes_answering_404_are_unsupported(
    start_sim: Any, tmp_path: Path
) -> None:
    sim = await start_sim({"c": {**STANDALONE, "faults": {"assumed_404": True}}})
    pkg = tmp_path / "p.pkg"
    write_package(pkg, "9.1R18", 29865)
    async with client_of(sim, "c") as client:
        with pytest.raises(Unsupported):
            await client.set_login_permission("solo", False)
        with pytest.raises(Unsupported):
            await client.install("solo", pkg)
        data = await client.export_config("solo", "user")  # [field] call: not affected
    assert data.startswith(b"PPS-SIM-CONFIG user_config")
    assert sim.cluster("c").write_counts(status=404) == {
        "solo": {"login_permission": 1, "install": 1}
    }


async def test_exports_decode_base64_with_line_breaks(start_sim: Any) -> None:
    sim = await start_sim({"c": STANDALONE})
    async with client_of(sim, "c") as client:
        system = await client.export_config("solo", "system")
        user = await client.export_config("solo", "user")
    assert system.startswith(b"PPS-SIM-CONFIG system_config cluster=c node=solo")
    assert user.startswith(b"PPS-SIM-CONFIG user_config")
    assert len(system) > 1000  # spans many base64 lines
    assert [e.detail for e in sim.cluster("c").log] == ["system_config", "user_config"]


async def test_empty_export_is_refused(start_sim: Any) -> None:
    sim = await start_sim({"c": {**STANDALONE, "faults": {"empty_export": True}}})
    async with client_of(sim, "c") as client:
        with pytest.raises(Rejected, match="empty"):
            await client.export_config("solo", "system")


async def test_login_permission_is_cluster_wide_and_read_back(start_sim: Any) -> None:
    sim = await start_sim({"c": AP})
    async with client_of(sim, "c") as client:
        await client.set_login_permission(VIP, False)
        assert (await client.active_users("east-b")).login_permission is False
        await client.set_login_permission("east-b", True)
        assert (await client.active_users(VIP)).login_permission is True
    log = [(e.node, e.detail, e.via_vip) for e in sim.cluster("c").log]
    assert log == [("east-a", "false", True), ("east-b", "true", False)]


async def test_healthcheck_needs_no_auth(start_sim: Any) -> None:
    sim = await start_sim({"c": AP})
    async with client_of(sim, "c", password="wrong") as client:
        health = await client.healthcheck("east-a")
    assert health["USER-COUNT"] == "3"  # 5 sessions, round-robin over 2 nodes
    assert health["CLUSTER-NAME"] == "c"


async def test_unknown_target_and_missing_vip(start_sim: Any) -> None:
    sim = await start_sim({"c": STANDALONE})
    async with client_of(sim, "c") as client:
        with pytest.raises(ApplianceError, match="no vip"):
            await client.system_info(VIP)
        with pytest.raises(ApplianceError, match="no node"):
            await client.system_info("ghost")


async def test_https_and_http_node_urls_both_work_over_vip(start_sim: Any) -> None:
    sim = await start_sim({"c": AP})
    async with client_of(sim, "c") as client:
        assert (await client.system_info(VIP)).host_name == "east-a"
    assert sim.vip_url("c").startswith("http://")


async def test_secrets_never_in_errors_logs_or_reprs(
    start_sim: Any, tmp_path: Path
) -> None:
    password = "Pa55-very-secret-word"
    sim = await start_sim({"c": {**STANDALONE, "password": password}})
    pkg = tmp_path / "p.pkg"
    write_package(pkg, "9.1R18", 29865)
    texts: list[str] = []
    with capture_logs() as logs:
        client = client_of(sim, "c")
        texts += [repr(client), str(client), repr(client.session)]
        await client.system_info("solo")
        sim.cluster("c").expire_keys()
        await client.overview("solo")  # 401, re-auth, retry
        sim.cluster("c").faults.install_status = 500
        wrong = client_of(sim, "c", password=password + "x")
        for action in (client.install("solo", pkg), wrong.system_info("solo")):
            try:
                await action
            except ApplianceError as exc:
                texts += [str(exc), repr(exc), exc.message]
        await wrong.aclose()
        keys = [k for k in sim.cluster("c").node("solo").keys]
        texts += [repr(client.session._keys), repr(client.session._password)]
        await client.aclose()
    texts += [repr(entry) for entry in logs]
    assert any(e["event"] == "pps.reauth" for e in logs)
    assert keys, "the node issued keys"
    blob = "\n".join(texts)
    assert password not in blob
    for key in keys:
        assert key not in blob


async def test_make_appliance_scales_retries_to_the_poll_interval(
    start_sim: Any, tmp_path: Path
) -> None:
    sim = await start_sim({"c": STANDALONE})
    c = sim.cluster("c")
    env = {"U": c.username, "P": c.password}
    settings = make_settings(tmp_path, PPS_POLL_SECONDS=0.1)
    client = make_appliance(cluster_of(sim, "c"), env=env, settings=settings)
    async with client:
        assert (await client.system_info("solo")).host_name == "solo"
        assert client.session.retry.base == pytest.approx(0.01)
        assert client.session.retry.cap == pytest.approx(0.1)
        assert (client.session.timeouts.connect, client.session.timeouts.read) == (1.0, 2.0)
    async with make_appliance(cluster_of(sim, "c"), env=env) as default:
        assert default.session.retry.base == 0.5
        assert (default.session.timeouts.connect, default.session.timeouts.read) == (5.0, 20.0)
    slow = make_settings(tmp_path, PPS_POLL_SECONDS=10)
    ten = make_appliance(cluster_of(sim, "c"), env=env, settings=slow)
    async with ten:
        assert (ten.session.timeouts.connect, ten.session.timeouts.read) == (5.0, 20.0)
