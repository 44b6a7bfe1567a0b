"""Credentials never sit in the inventory's URLs, and clear-text http:// nodes are warned
about loudly: in the inventory's warnings, `ppsbot check`, and the start-up log of the bot
and of the worker."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.check import main as check_main
from jobs.config.inventory import InventoryError, parse_inventory
from sim.pps.packages import write_package
from tests.fakes.bot_process import BotProcess, write_inventory

PASSWORD = "S3cret-pw-7d2"
ENV = {"U": "admin", "P": "pw"}


def _inventory(nodes: list[dict[str, str]], **cluster: Any) -> dict[str, Any]:
    return {"clusters": {"east": {"mode": "active-active", "username_env": "U",
                                  "password_env": "P", "nodes": nodes, **cluster}},
            "firmware": [{"version": "9.1R18", "file": "p.pkg", "sha256": "0" * 64}]}


@pytest.mark.parametrize("url", [
    f"https://admin:{PASSWORD}@10.0.0.1",
    f"http://admin:{PASSWORD}@10.0.0.1:8080/",
    f"https://{PASSWORD}@10.0.0.1",
    f"https://admin:{PASSWORD}@",
])
def test_credentials_in_a_node_or_vip_url_are_refused_without_echoing_them(
    url: str, tmp_path: Path
) -> None:
    good = {"name": "east-b", "url": "https://10.0.0.2"}
    for data in (_inventory([{"name": "east-a", "url": url}, good]),
                 _inventory([{"name": "east-a", "url": "https://10.0.0.1"}, good], vip=url)):
        with pytest.raises(InventoryError) as err:
            parse_inventory(data, tmp_path, env=ENV, check_files=False)
        text = str(err.value)
        assert "must not carry credentials" in text, text
        assert PASSWORD not in text and "admin:" not in text and "10.0.0.1" not in text


def test_http_nodes_are_warned_about(tmp_path: Path) -> None:
    inv = parse_inventory(_inventory([{"name": "east-a", "url": "http://10.0.0.1"},
                                      {"name": "east-b", "url": "https://10.0.0.2"}],
                                     vip="http://vpn.example.net"),
                          tmp_path, env=ENV, check_files=False)
    assert inv.warnings == ("clusters.east: east-a, the VIP use http://: the admin password "
                            "crosses the network in clear text; use https://",)
    safe = parse_inventory(_inventory([{"name": "east-a", "url": "https://10.0.0.1"},
                                       {"name": "east-b", "url": "https://10.0.0.2"}]),
                           tmp_path, env=ENV, check_files=False)
    assert safe.warnings == ()


async def test_check_warns_about_http_nodes(
    start_sim: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = await start_sim({"lab": {"mode": "standalone", "nodes": ["lab-1"]}})  # http://
    sha = write_package(tmp_path / "fw.pkg", "9.1R18", 29865)
    inv = sim.inventory([{"version": "9.1R18", "file": "fw.pkg", "sha256": sha}])
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inv))
    for k, v in {**sim.credentials_env(), "PPS_INVENTORY": str(tmp_path / "inventory.yml"),
                 "SLACK_BOT_TOKEN": "xoxb-t", "SLACK_SIGNING_SECRET": "s",
                 "PPS_CHANNEL": "C1", "PPS_APPROVERS": "U1",
                 "REDIS_URL": os.environ.get("REDIS_URL", "redis://localhost:6379/0")}.items():
        monkeypatch.setenv(k, v)
    out = io.StringIO()
    await asyncio.to_thread(check_main, out, configure_logs=False)
    assert ("WARNING: clusters.lab: lab-1 use http://: the admin password crosses the "
            "network in clear text") in out.getvalue(), out.getvalue()


def _warnings(log: str) -> list[str]:
    out = []
    for line in log.splitlines():
        rec = json.loads(line) if line.startswith("{") else {}
        if rec.get("event") == "inventory_warning" and rec.get("level") == "warning":
            out.append(str(rec.get("warning")))
    return out


@pytest.mark.slow
def test_bot_and_worker_log_http_nodes_at_start(tmp_path: Path) -> None:
    inv = write_inventory(tmp_path / "inventory.yml",
                          nodes=[{"name": "lab-1", "url": "http://10.9.9.9:1"}])
    bot = BotProcess(tmp_path, inventory=inv)
    try:
        bot.wait_healthy()
    finally:
        bot_log = bot.stop()
    assert [w for w in _warnings(bot_log) if "lab-1 use http://" in w], bot_log

    sha = write_package(tmp_path / "pps.pkg", "9.1R18", 29865)
    data = yaml.safe_load(inv.read_text())
    data["firmware"][0]["sha256"] = sha
    inv.write_text(yaml.safe_dump(data))
    log = tmp_path / "worker.log"
    env = {**bot.env, "LAB_U": "admin", "LAB_P": "pw"}
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "worker", "--name", "w-url"],
                                cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while '"worker started"' not in log.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        bot.stop()  # deletes the keys under its prefix, which the worker shared
    assert [w for w in _warnings(log.read_text()) if "lab-1 use http://" in w], log.read_text()
