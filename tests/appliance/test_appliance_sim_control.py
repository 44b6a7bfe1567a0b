"""Simulator plumbing: config parsing, package convention, control API, the CLI entry."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from jobs.appliance.protocol import Unsupported
from sim.pps.config import load_config, parse_config
from sim.pps.packages import build_string, package_bytes, read_package_header, write_package
from tests.appliance.appliance_support import FAST, client_of, wait_for
from tests.fakes import ROOT


def test_write_package_round_trip(tmp_path: Path) -> None:
    digest = write_package(tmp_path / "fw" / "p.pkg", "9.1R18", 29865, size=10_000)
    data = (tmp_path / "fw" / "p.pkg").read_bytes()
    assert len(data) == 10_000
    assert hashlib.sha256(data).hexdigest() == digest
    assert read_package_header(data) == ("9.1R18", 29865)
    assert build_string("9.1R18", 29865) == "9.1R18 (build 29865)"
    assert read_package_header(b"garbage\n") is None
    assert package_bytes("22.7R2.3", 3431) != package_bytes("22.7R2.3", 3432)


def test_example_config_parses() -> None:
    cfg = load_config(ROOT / "sim.example.yml")
    by = {c.name: c for c in cfg.clusters}
    assert set(by) == {"cluster-east", "cluster-west", "lab"}
    east = by["cluster-east"]
    assert (east.mode, east.vip_port, len(east.sessions)) == ("active-passive", 8710, 412)
    assert [n.port for n in east.nodes] == [8711, 8712]
    assert by["lab"].nodes[0].build == "22.7R2.3 (build 3431)"
    assert by["lab"].nodes[0].rollback_build is None
    assert by["lab"].knobs.reboot_seconds == 3 and east.knobs.reboot_seconds == 8
    assert by["lab"].legacy_auth_enabled(by["lab"].nodes[0]) is False
    assert east.legacy_auth_enabled(east.nodes[0]) is True


@pytest.mark.parametrize(
    ("cluster", "message"),
    [
        ({"mode": "cluster", "nodes": ["a"]}, "mode must be one of"),
        ({"mode": "active-passive", "nodes": ["a", "b", "c"]}, "exactly two nodes"),
        ({"mode": "standalone", "nodes": ["a", "b"]}, "exactly one node"),
        ({"mode": "active-active", "nodes": ["a", "a"]}, "duplicate node name"),
        ({"mode": "standalone", "nodes": []}, "non-empty list"),
        ({"mode": "standalone", "nodes": [{"name": "a", "port": 70000}]}, "port must be"),
        ({"mode": "standalone", "nodes": ["a"], "knobs": {"warp": 9}}, "unknown knob 'warp'"),
        ({"mode": "standalone", "nodes": ["a"], "faults": {"fire": 1}}, "unknown fault 'fire'"),
        ({"mode": "active-passive", "nodes": ["a", "b"], "active": "z"}, "not one of its"),
    ],
)
def test_config_mistakes(cluster: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_config({"clusters": {"c": cluster}}, Path("."))


async def test_control_api_reads_and_changes_state(start_sim: Any) -> None:
    sim = await start_sim(
        {"east": {"mode": "active-passive", "nodes": ["east-a", "east-b"], "knobs": FAST}}
    )
    base = sim.control_url + "/_sim/clusters"
    async with httpx.AsyncClient() as http, client_of(sim, "east") as client:
        state = (await http.get(f"{base}/east")).json()
        assert state["vip_holder"] == "east-a"
        assert [n["status"] for n in state["nodes"]] == ["Leader", "Enabled"]
        assert state["vip_url"] == sim.vip_url("east")

        r = await http.patch(
            f"{base}/east",
            json={"faults": {"assumed_404": True}, "sessions": 7, "login_permission": False},
        )
        assert r.status_code == 200 and r.json()["faults"]["assumed_404"] is True
        users = await client.active_users("east-a")
        assert (users.sessions, users.login_permission) == (7, False)

        await client.system_info("east-b")
        assert (await http.post(f"{base}/east/expire-keys")).json() == {"expired": True}
        assert sim.cluster("east").node("east-b").keys == {}

        r = await http.patch(f"{base}/east/nodes/east-b", json={"build": "9.1R18 (build 1)"})
        assert r.json()["nodes"][1]["build"] == "9.1R18 (build 1)"
        assert (await client.system_info("east-b")).build == "9.1R18 (build 1)"

        r = await http.post(f"{base}/east/nodes/east-a/power", json={"on": False})
        assert r.json()["vip_holder"] == "east-b"
        assert (await client.system_info("<vip>")).host_name == "east-b"
        await http.post(f"{base}/east/nodes/east-a/power", json={"on": True})
        assert (await client.system_info("<vip>")).host_name == "east-a"

        await http.post(f"{base}/east/nodes/east-b/reboot")
        await wait_for(lambda: sim.cluster("east").node("east-b").phase == "up")

        with pytest.raises(Unsupported):  # assumed_404: answered 404, and logged
            await client.set_login_permission("east-a", True)
        log = (await http.get(f"{base}/east/log")).json()
        # east-a was power-cycled, so its key is gone: 401, a fresh login, then the 404.
        assert log["counts"] == {"east-a": {"login_permission": 2}, "east-b": {}}
        assert [e["status"] for e in log["entries"]] == [401, 404]
        # Each write says when it arrived and when it was answered (benchmarks time to it).
        assert all(0 < e["received_at"] <= e["at"] for e in log["entries"])
        assert (await http.delete(f"{base}/east/log")).json() == {"entries": []}
        everything = (await http.get(base)).json()
        assert list(everything) == ["east"]
        events = [e["text"] for e in everything["east"]["events"]]
        assert "east-b: rebooting" in events and "vip: east-a -> east-b" in events


async def test_console_install_follows_the_api_rules(start_sim: Any) -> None:
    sim = await start_sim(
        {"east": {"mode": "active-passive", "nodes": ["east-a", "east-b"], "knobs": FAST}}
    )
    base = sim.control_url + "/_sim/clusters/east/nodes"
    c = sim.cluster("east")
    async with httpx.AsyncClient() as http:
        body = {"version": "9.1R18", "build": 29865}
        r = await http.post(f"{base}/east-b/console-install", json=body)
        assert r.status_code == 400 and "passive" in r.json()["error"]
        r = await http.post(f"{base}/east-a/console-install", json={"version": "9.1R18"})
        assert r.status_code == 400
        r = await http.post(f"{base}/east-a/console-install", json=body)
        assert r.status_code == 200
        assert c.node("east-a").phase == "installing"  # at once, no API grace
        r = await http.post(f"{base}/east-a/console-install", json=body)
        assert r.status_code == 400 and "in progress" in r.json()["error"]
    await wait_for(lambda: not c.upgrading)
    assert [n.build for n in c.nodes] == ["9.1R18 (build 29865)"] * 2
    assert c.log == []  # the write log records API calls only


async def test_control_api_errors(start_sim: Any) -> None:
    sim = await start_sim({"c": {"mode": "standalone", "nodes": ["solo"]}})
    base = sim.control_url + "/_sim/clusters"
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{base}/nope")).status_code == 404
        r = await http.patch(f"{base}/c/nodes/ghost", json={"build": "x"})
        assert r.status_code == 404 and "ghost" in r.json()["error"]
        r = await http.patch(f"{base}/c", json={"knobs": {"warp": 1}})
        assert r.status_code == 400 and "unknown knob" in r.json()["error"]
        r = await http.patch(f"{base}/c", content=b"[1,2]")
        assert r.status_code == 400
        r = await http.post(f"{base}/c/nodes/solo/power", json={"on": "yes"})
        assert r.status_code == 400


async def test_unknown_api_paths_are_404(start_sim: Any) -> None:
    sim = await start_sim({"c": {"mode": "standalone", "nodes": ["solo"]}})
    async with httpx.AsyncClient() as http:
        r = await http.get(sim.node_url("c", "solo") + "/api/v1/system/nothing-here")
        assert r.status_code == 404
        r = await http.get(sim.node_url("c", "solo") + "/api/v1/system/system-information")
        assert r.status_code == 401  # no key


def test_cli_prints_ports_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    cfg = {
        "control_port": 0,
        "clusters": {
            "east": {"mode": "active-passive", "nodes": ["east-a", "east-b"]},
            "solo": {"mode": "standalone", "nodes": ["s1"]},
        },
    }
    path = tmp_path / "sim.yml"
    path.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "simulator", "--config", str(path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(lines) < 6:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
        text = "".join(lines)
        urls = re.findall(r"http://127\.0\.0\.1:(\d+)", text)
        assert len(urls) == 5, text  # control, east-a, east-b, VIP, s1
        control = int(urls[0])
        r = httpx.get(f"http://127.0.0.1:{control}/_sim/clusters", timeout=5)
        assert set(r.json()) == {"east", "solo"}
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "stopped" in out


def test_cli_reports_a_bad_config(tmp_path: Path) -> None:
    path = tmp_path / "sim.yml"
    path.write_text("clusters: {c: {mode: weird, nodes: [a]}}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "bot.cli", "simulator", "--config", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "mode must be one of" in proc.stderr
