"""Per-cluster `tls_verify`: CA bundle, false (warned), true (system CAs), over real HTTPS.

The simulator serves HTTPS with a node certificate signed by a throw-away CA made with
the `openssl` command line.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from jobs.appliance.policy import tls_verify
from jobs.appliance.protocol import Unreachable
from tests.appliance.appliance_support import client_of

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("pki")
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl(
        "req",
        "-x509",
        *ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=PPS Sim Test CA",
        cwd=d,
    )
    _openssl("req", *ec, "-keyout", "node.key", "-out", "node.csr", "-subj", "/CN=127.0.0.1", cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl(
        "x509",
        "-req",
        "-in",
        "node.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "node.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        cwd=d,
    )
    return {"ca": str(d / "ca.pem"), "cert": str(d / "node.pem"), "key": str(d / "node.key")}


async def _https_sim(start_sim: Any, pki: dict[str, str]) -> Any:
    return await start_sim(
        {"c": {"mode": "active-passive", "nodes": ["east-a", "east-b"]}},
        tls={"cert": pki["cert"], "key": pki["key"]},
    )


async def test_ca_bundle_path_verifies_the_node(
    start_sim: Any, pki: dict[str, str]
) -> None:
    sim = await _https_sim(start_sim, pki)
    assert sim.node_url("c", "east-a").startswith("https://127.0.0.1:")
    async with client_of(sim, "c", tls_verify=pki["ca"]) as client:
        assert (await client.system_info("east-a")).host_name == "east-a"
        assert (await client.system_info("<vip>")).host_name == "east-a"


def test_ca_bundle_path_is_what_httpx_gets(pki: dict[str, str]) -> None:
    from jobs.config.inventory import Cluster, Node

    cluster = Cluster(
        name="tls-ca",
        mode="standalone",
        nodes=(Node("n", "https://127.0.0.1:1"),),
        username_env="U",
        password_env="P",
        tls_verify=pki["ca"],
    )
    ctx = tls_verify(cluster)
    assert isinstance(ctx, ssl.SSLContext)
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    subjects = [c["subject"] for c in ctx.get_ca_certs()]
    assert subjects == [((("commonName", "PPS Sim Test CA"),),)]


async def test_system_cas_refuse_the_private_ca(
    start_sim: Any, pki: dict[str, str]
) -> None:
    sim = await _https_sim(start_sim, pki)
    async with client_of(sim, "c", tls_verify=True) as client:
        with pytest.raises(Unreachable, match="TLS"):
            await client.system_info("east-a")


async def test_verify_false_works_and_warns_once(
    start_sim: Any, pki: dict[str, str]
) -> None:
    sim = await _https_sim(start_sim, pki)
    name = f"c-{uuid.uuid4().hex[:6]}"  # the warning is once per cluster name and process
    with capture_logs() as logs:
        async with client_of(sim, "c", tls_verify=False, name=name) as client:
            assert (await client.system_info("east-b")).host_name == "east-b"
        async with client_of(sim, "c", tls_verify=False, name=name):
            pass
    warnings = [e for e in logs if e["event"] == "pps.tls_verify_disabled"]
    assert len(warnings) == 1
    assert warnings[0]["log_level"] == "warning" and warnings[0]["cluster"] == name
