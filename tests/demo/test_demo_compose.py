"""docker-compose.yml, Dockerfile and .env.example say what the operations docs promise.

No Docker engine runs here: the files are parsed and checked, not built.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from jobs.config.settings import Settings
from tests.fakes import ROOT


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def redis_args(service: dict[str, Any]) -> dict[str, str]:
    cmd = service["command"]
    assert cmd[0] == "redis-server"
    flags = cmd[1:]
    return {flags[i].removeprefix("--"): str(flags[i + 1]) for i in range(0, len(flags), 2)}


def test_redis_is_durable_and_never_evicts(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    assert redis_args(redis) == {
        "appendonly": "yes",
        "appendfsync": "everysec",
        "maxmemory-policy": "noeviction",
    }
    volume = redis["volumes"][0].split(":")
    assert volume[1] == "/data" and volume[0] in compose["volumes"]
    assert "redis-cli" in redis["healthcheck"]["test"]
    assert "profiles" not in redis


def test_bot_and_two_workers_with_healthchecks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    bot, worker = services["bot"], services["worker"]
    assert bot["command"] == ["bot"] and worker["command"] == ["worker"]
    assert worker["deploy"]["replicas"] == 2
    for svc in (bot, worker):
        assert "profiles" not in svc
        assert svc["environment"]["REDIS_URL"] == "redis://redis:6379/0"
        assert svc["depends_on"]["redis"]["condition"] == "service_healthy"
        assert svc["healthcheck"]["test"][0] == "CMD"
        assert svc["restart"] == "unless-stopped"
    assert "/healthz" in " ".join(bot["healthcheck"]["test"])
    assert "3000:3000" in bot["ports"]
    # Backups survive container restarts, and every worker writes to the same place.
    assert any(v.startswith("backups:/data/backups") for v in worker["volumes"])


def test_demo_profile_adds_simulator_and_standin(compose: dict[str, Any]) -> None:
    services = compose["services"]
    demo = {name for name, s in services.items() if "demo" in s.get("profiles", [])}
    assert demo == {"demo-setup", "simulator", "standin"}
    assert services["standin"]["command"][-1] == "http://bot:3000/slack/events"
    assert "8080:8080" in services["standin"]["ports"]
    assert services["simulator"]["depends_on"]["demo-setup"]["condition"] == (
        "service_completed_successfully"
    )
    for name in ("simulator", "standin"):
        assert services[name]["healthcheck"]["test"][0] == "CMD"
    # Outside the demo profile the bot must still start: its stand-in dependency is optional.
    assert services["bot"]["depends_on"]["standin"]["required"] is False
    # The simulator's health probe and the generated inventory agree on the node ports.
    from sim.demo.config import COMPOSE_PORT_BASE, port_names

    probe = " ".join(services["simulator"]["healthcheck"]["test"])
    m = re.search(r"127\.0\.0\.1:(\d+)/", probe)
    assert m is not None
    port = int(m.group(1))
    assert COMPOSE_PORT_BASE <= port < COMPOSE_PORT_BASE + len(port_names())


def test_dockerfile_is_slim_and_non_root() -> None:
    text = (ROOT / "Dockerfile").read_text()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines[0] == "FROM python:3.11-slim"
    assert any(ln.startswith("RUN pip install .") for ln in lines)
    users = [ln.split()[1] for ln in lines if ln.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert lines[-2:] == ['ENTRYPOINT ["ppsbot"]', 'CMD ["bot"]']
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".env", "tests"} <= set(ignore)


def test_env_example_names_every_setting() -> None:
    text = (ROOT / ".env.example").read_text()
    named = set(re.findall(r"^(?:# )?([A-Z][A-Z0-9_]+)=", text, flags=re.M))
    missing = set(Settings.model_fields) - named
    assert not missing, f".env.example lacks {sorted(missing)}"
    # Only what must be filled in is active; defaults stay commented so the image's win.
    active = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", text, flags=re.M))
    assert active == {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "PPS_CHANNEL", "PPS_APPROVERS"}
    assert re.search(r"^SLACK_\w+=\S", text, flags=re.M) is None  # no secret values
