"""Generate a demo directory: firmware packages, an inventory, a simulator config, settings.

`write_demo(run_dir, ...)` lays out

    <run_dir>/firmware/pps-9.1R17-package.pkg, pps-9.1R18-package.pkg
    <run_dir>/inventory.yml   cluster-east (A/P + VIP), cluster-west (A/A, 3), lab (standalone)
    <run_dir>/sim.yml         the simulator serving those nodes on fixed local ports
    <run_dir>/backups/        PPS_BACKUP_DIR
    <run_dir>/logs/           one log per child process

and returns a `DemoConfig` holding the environment every child process gets. Secrets
(signing secret, bot token, appliance password) are fresh random values per run.
`python -m sim.demo.config --out /demo` writes the same files for the docker compose
`demo` profile (nodes at `http://simulator:9001…`, credentials from the environment).
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sim.pps.packages import build_string, write_package

CHANNEL = "C0PPSDEMO"
# The stand-in's group S_APPROVERS (alex, sam) plus riley, the usual requester: riley may
# approve other people's jobs, so refusing riley's approval of their own job is the
# two-person rule at work, not a missing right.
APPROVERS = "S_APPROVERS,U_REQUESTER"
USERNAME_ENV = "PPS_DEMO_USERNAME"
PASSWORD_ENV = "PPS_DEMO_PASSWORD"
RUNNING = ("9.1R17", 27583)
TARGET = ("9.1R18", 29865)
ROLLBACK = ("9.1R16", 26213)

# name -> (mode, node names, has a VIP, active sessions)
CLUSTERS: dict[str, tuple[str, tuple[str, ...], bool, int]] = {
    "cluster-east": ("active-passive", ("east-a", "east-b"), True, 412),
    "cluster-west": ("active-active", ("west-a", "west-b", "west-c"), False, 1380),
    "lab": ("standalone", ("lab-1",), False, 12),
}


@dataclass(frozen=True)
class Timings:
    """Bot settings and simulator knobs that decide how long a demo upgrade takes."""

    settle: float = 20.0
    poll: float = 2.0
    reboot_timeout: float = 600.0
    reminder: float = 120.0
    lease: float = 15.0
    fleet_poll: float = 30.0
    install: float = 4.0
    reboot: float = 8.0
    rejoin: float = 3.0


DEMO_TIMINGS = Timings()
# For the browser test: the same procedure in a few seconds.
FAST_TIMINGS = Timings(settle=2.0, poll=0.25, reboot_timeout=60.0, reminder=60.0, lease=5.0,
                       fleet_poll=2.0, install=0.5, reboot=1.0, rejoin=0.5)


@dataclass(frozen=True)
class DemoConfig:
    """Where everything is and what each child process is told."""

    run_dir: Path
    host: str
    inventory: Path
    sim_config: Path
    bot_port: int
    standin_port: int
    node_ports: dict[str, int]
    env: dict[str, str] = field(repr=False)

    @property
    def bot_url(self) -> str:
        return f"http://{self.host}:{self.bot_port}"

    @property
    def events_url(self) -> str:
        """The bot's Slack request URL (what the stand-in posts commands and clicks to)."""
        return f"{self.bot_url}/slack/events"

    @property
    def page_url(self) -> str:
        return f"http://{self.host}:{self.standin_port}/"

    @property
    def logs(self) -> Path:
        return self.run_dir / "logs"


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on `host` right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Can we bind `port` on `host` right now?"""
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def write_firmware(run_dir: Path) -> list[dict[str, str]]:
    """Simulated packages for the running and the target version; catalogue entries."""
    catalogue = []
    for version, build in (TARGET, RUNNING):
        rel = f"firmware/pps-{version}-package.pkg"
        digest = write_package(run_dir / rel, version, build)
        catalogue.append({"version": version, "file": rel, "sha256": digest})
    return catalogue


def inventory_data(
    host: str, node_ports: Mapping[str, int], catalogue: list[dict[str, str]]
) -> dict[str, Any]:
    """The inventory (DESIGN §3 format) for the three demo clusters."""
    clusters: dict[str, Any] = {}
    for name, (mode, nodes, has_vip, _sessions) in CLUSTERS.items():
        c: dict[str, Any] = {
            "mode": mode,
            "nodes": [{"name": n, "url": f"http://{host}:{node_ports[n]}"} for n in nodes],
            "username_env": USERNAME_ENV,
            "password_env": PASSWORD_ENV,
            "realm": "Admin Users",
            "tls_verify": True,
            "channel": CHANNEL,
        }
        if has_vip:
            c["vip"] = f"http://{host}:{node_ports[vip_name(name)]}"
        clusters[name] = c
    return {"clusters": clusters, "firmware": catalogue}


def vip_name(cluster: str) -> str:
    return f"{cluster}-vip"


def sim_data(
    host: str, node_ports: Mapping[str, int], username: str, password: str, t: Timings
) -> dict[str, Any]:
    """The simulator config: every node at 9.1R17 with 9.1R16 on the rollback partition."""
    clusters: dict[str, Any] = {}
    for name, (mode, nodes, has_vip, sessions) in CLUSTERS.items():
        c: dict[str, Any] = {
            "mode": mode,
            "username": username,
            "password": password,
            "realm": "Admin Users",
            "sessions": sessions,
            "knobs": {
                "install_seconds": t.install,
                "reboot_seconds": t.reboot,
                "rejoin_seconds": t.rejoin,
            },
            "nodes": [
                {
                    "name": n,
                    "port": node_ports[n],
                    "build": build_string(*RUNNING),
                    "rollback_build": build_string(*ROLLBACK),
                }
                for n in nodes
            ],
        }
        if has_vip:
            c["vip_port"] = node_ports[vip_name(name)]
        clusters[name] = c
    return {"host": host, "clusters": clusters}


def port_names() -> list[str]:
    """Every node and VIP that needs a port, in a stable order."""
    names: list[str] = []
    for cname, (_mode, nodes, has_vip, _s) in CLUSTERS.items():
        names.extend(nodes)
        if has_vip:
            names.append(vip_name(cname))
    return names


def allocate_ports(host: str) -> dict[str, int]:
    """One free port per node and per VIP."""
    return {n: free_port(host) for n in port_names()}


def write_files(
    run_dir: Path,
    *,
    url_host: str,
    listen_host: str,
    node_ports: Mapping[str, int],
    username: str,
    password: str,
    timings: Timings,
) -> tuple[Path, Path]:
    """Firmware, `inventory.yml` (nodes at `url_host`) and `sim.yml` (listening on
    `listen_host`); returns their paths."""
    for sub in ("firmware", "backups", "logs"):
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    catalogue = write_firmware(run_dir)
    inventory = run_dir / "inventory.yml"
    inventory.write_text(
        "# Generated by `ppsbot demo`: three simulated clusters at 9.1R17, 9.1R18 offered.\n"
        + yaml.safe_dump(inventory_data(url_host, node_ports, catalogue), sort_keys=False)
    )
    sim_config = run_dir / "sim.yml"
    sim_config.write_text(
        "# Generated by `ppsbot demo`: the simulated appliances behind inventory.yml.\n"
        + yaml.safe_dump(sim_data(listen_host, node_ports, username, password, timings),
                         sort_keys=False)
    )
    sim_config.chmod(0o600)  # it holds the simulated admin password
    return inventory, sim_config


def write_demo(
    run_dir: Path,
    *,
    redis_url: str,
    prefix: str,
    timings: Timings = DEMO_TIMINGS,
    host: str = "127.0.0.1",
    standin_port: int | None = None,
    approvers: str = APPROVERS,
) -> DemoConfig:
    """Write the demo directory and return its config (ports picked now, free at this time)."""
    run_dir = run_dir.resolve()
    node_ports = allocate_ports(host)
    bot_port = free_port(host)
    if standin_port is None or not port_is_free(standin_port, host):
        standin_port = free_port(host)
    username, password = "admin", secrets.token_urlsafe(12)
    inventory, sim_config = write_files(
        run_dir, url_host=host, listen_host=host, node_ports=node_ports,
        username=username, password=password, timings=timings,
    )
    env = {
        "SLACK_BOT_TOKEN": "xoxb-demo-" + secrets.token_hex(12),
        "SLACK_SIGNING_SECRET": secrets.token_hex(16),
        "SLACK_API_URL": f"http://{host}:{standin_port}/api/",
        "PORT": str(bot_port),
        "REDIS_URL": redis_url,
        "PPS_REDIS_PREFIX": prefix,
        "PPS_INVENTORY": str(inventory),
        "PPS_CHANNEL": CHANNEL,
        "PPS_APPROVERS": approvers,
        "PPS_TWO_PERSON_RULE": "true",
        # Logins off 5 min with the enable request unanswered: an escalation in the channel
        # and a webhook the stand-in records (GET /_standin/webhook).
        "PPS_ESCALATE_AFTER_SECONDS": "300",
        "PPS_ESCALATION_WEBHOOK": f"http://{host}:{standin_port}/_standin/webhook",
        "PPS_SETTLE_SECONDS": str(timings.settle),
        "PPS_POLL_SECONDS": str(timings.poll),
        "PPS_REBOOT_TIMEOUT_SECONDS": str(timings.reboot_timeout),
        "PPS_REMINDER_SECONDS": str(timings.reminder),
        "PPS_BACKUP_DIR": str(run_dir / "backups"),
        "PPS_LEASE_SECONDS": str(timings.lease),
        "PPS_FLEET_POLL_SECONDS": str(timings.fleet_poll),
        USERNAME_ENV: username,
        PASSWORD_ENV: password,
        "LOG_FORMAT": "json",
    }
    return DemoConfig(
        run_dir=run_dir,
        host=host,
        inventory=inventory,
        sim_config=sim_config,
        bot_port=bot_port,
        standin_port=standin_port,
        node_ports=node_ports,
        env=env,
    )


COMPOSE_PORT_BASE = 9001


def write_compose_demo(
    out: Path, env: Mapping[str, str], port_base: int = COMPOSE_PORT_BASE
) -> int:
    """The docker compose `demo` profile's files: nodes at `http://simulator:<port>`.

    The appliance credentials come from `env` (PPS_DEMO_USERNAME / PPS_DEMO_PASSWORD,
    the same `.env` the bot and the worker read), so nothing secret is baked in.
    """
    password = env.get(PASSWORD_ENV, "")
    if not password:
        print(f"{PASSWORD_ENV} must be set (see .env.example)", file=sys.stderr)
        return 2
    ports = {name: port_base + i for i, name in enumerate(port_names())}
    write_files(out, url_host="simulator", listen_host="0.0.0.0", node_ports=ports,
                username=env.get(USERNAME_ENV) or "admin", password=password,
                timings=DEMO_TIMINGS)
    print(f"demo files written to {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m sim.demo.config --out /demo`: write the compose demo's files."""
    p = argparse.ArgumentParser(prog="python -m sim.demo.config", description=main.__doc__)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--port-base", type=int, default=COMPOSE_PORT_BASE)
    a = p.parse_args(argv)
    return write_compose_demo(a.out, os.environ, a.port_base)


if __name__ == "__main__":
    sys.exit(main())
