"""`ppsbot check` against the in-process simulator (main() in a thread, sim in the loop)."""

from __future__ import annotations

import asyncio
import io
import os
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import yaml

from bot.check import main
from jobs.config.clock import SystemClock
from jobs.store.keys import Keys
from jobs.store.presence import Presence
from tests.fakes import sim_firmware

PASSWORD = "Sup3r-s3cret-pw"
CLUSTERS = {
    "east": {"mode": "active-passive", "nodes": ["east-a", "east-b"], "password": PASSWORD},
    "lab": {"mode": "standalone", "nodes": ["lab-1"], "password": PASSWORD},
}


async def _prepare(
    start_sim: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **edit: Any
) -> Any:
    sim = await start_sim(CLUSTERS)
    inventory = sim.inventory(sim_firmware(tmp_path))
    for path, value in edit.items():
        cluster, key = path.split("__")
        inventory["clusters"][cluster][key] = value
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    for k, v in sim.credentials_env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("PPS_INVENTORY", str(tmp_path / "inventory.yml"))
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "signing-secret-test")
    monkeypatch.setenv("PPS_CHANNEL", "C0123ABCD")
    monkeypatch.setenv("PPS_APPROVERS", "U0123ABCD")
    monkeypatch.setenv("REDIS_URL", os.environ.get("REDIS_URL", "redis://localhost:6379/0"))
    return sim


async def _run() -> tuple[int, str]:
    out = io.StringIO()
    code = await asyncio.to_thread(main, out, configure_logs=False)
    return code, out.getvalue()


async def test_check_all_good(start_sim: Any, tmp_path: Path, monkeypatch: Any) -> None:
    await _prepare(start_sim, tmp_path, monkeypatch)
    code, text = await _run()
    assert code == 0, text
    lines = text.splitlines()
    assert lines[1].split() == [
        "cluster",
        "node",
        "reachable",
        "build",
        "logins",
        "cluster",
        "status",
    ]
    rows = {tuple(line.split()[:2]): line for line in lines[2:6]}
    assert "yes" in rows[("east", "east-a")] and "Leader" in rows[("east", "east-a")]
    assert rows[("east", "east-b")].rstrip().endswith("Enabled")
    assert "yes (east-a)" in rows[("east", "VIP")]
    assert "9.1R17 (build 27583)" in rows[("lab", "lab-1")]
    assert "enabled" in rows[("lab", "lab-1")] and "standalone" in rows[("lab", "lab-1")]
    assert text.rstrip().endswith("all good")
    assert PASSWORD not in text


async def test_check_notes_when_no_worker_is_running(
    start_sim: Any, tmp_path: Path, monkeypatch: Any, redis: aioredis.Redis, keys: Keys
) -> None:
    await _prepare(start_sim, tmp_path, monkeypatch)
    monkeypatch.setenv("PPS_REDIS_PREFIX", keys.prefix)
    code, text = await _run()
    assert code == 0, text  # a note, not a problem: check may run before the workers start
    assert "note: no worker is running (`ppsbot worker`)" in text
    await Presence(redis, keys, SystemClock(), 30).announce("w1")
    code, text = await _run()
    assert code == 0 and "no worker is running" not in text, text


async def test_check_reports_unreachable_and_refused(
    start_sim: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    sim = await _prepare(start_sim, tmp_path, monkeypatch)
    await sim.power("east", "east-b", False)
    monkeypatch.setenv("PPS_SIM_LAB_PASSWORD", PASSWORD + "-wrong")
    monkeypatch.delenv("PPS_APPROVERS")
    sim.cluster("east").login_permission = False
    code, text = await _run()
    assert code == 1, text
    assert "east-b  no: connection refused" in text
    assert "lab/lab-1: admin credentials refused" in text
    assert "east/east-a: cluster status" not in text  # the survivor is fine
    assert "east/east-b: connection refused" in text
    assert "cluster east has no approvers and PPS_APPROVERS is not set" in text
    assert "note: east/east-a: user logins are disabled" in text
    assert "4 problem(s)" in text  # east-b, lab-1, two clusters without approvers
    assert PASSWORD not in text


async def test_check_refuses_a_broken_inventory(
    start_sim: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    await _prepare(start_sim, tmp_path, monkeypatch, east__mode="cluster")
    monkeypatch.delenv("PPS_SIM_LAB_USERNAME")
    code, text = await _run()
    assert code == 2
    assert "2 problem(s)" in text
    assert "clusters.east: unknown mode 'cluster'" in text
    assert "environment variable PPS_SIM_LAB_USERNAME (username_env) is not set" in text


async def test_check_refuses_bad_settings(start_sim: Any, tmp_path: Path, monkeypatch: Any) -> None:
    await _prepare(start_sim, tmp_path, monkeypatch)
    monkeypatch.setenv("PPS_POLL_SECONDS", "zero")
    code, text = await _run()
    assert code == 2
    assert "PPS_POLL_SECONDS" in text
