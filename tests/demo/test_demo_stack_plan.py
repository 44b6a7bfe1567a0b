"""What `DemoStack` starts: the stand-in's rate limits are off unless asked for."""

from __future__ import annotations

from pathlib import Path

from sim.demo.config import DemoConfig
from sim.demo.stack import DemoStack


def _cfg(tmp_path: Path) -> DemoConfig:
    return DemoConfig(run_dir=tmp_path, host="127.0.0.1", inventory=tmp_path / "inventory.yml",
                      sim_config=tmp_path / "sim.yml", bot_port=3000, standin_port=3100,
                      node_ports={}, env={})


def test_standin_rate_limit_is_passed_only_when_set(tmp_path: Path) -> None:
    plain = {c.name: c.argv for c in DemoStack(_cfg(tmp_path), workers=2).plan()}
    assert list(plain) == ["simulator", "standin", "worker-1", "worker-2", "bot"]
    assert "--rate-limit" not in plain["standin"]
    limited = {c.name: c.argv for c in DemoStack(_cfg(tmp_path), standin_rate_limit=1).plan()}
    assert limited["standin"][-2:] == ["--rate-limit", "1"]
