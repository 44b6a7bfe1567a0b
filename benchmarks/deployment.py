"""A benchmark deployment: N simulated clusters, the Slack stand-in, `ppsbot worker` x W and
`ppsbot bot` as real processes on a private Redis key prefix (removed afterwards). At the
full size, figures are measured once the workers' first fleet poll has read every cluster.

The clusters mix standalone, active/passive (with a VIP) and active/active, with
accelerated timings that differ a little per cluster, spread over up to 20 channels. The
processes are started and stopped by the demo's `DemoStack`; only the files differ.
"""

from __future__ import annotations

import contextlib
import resource
import secrets
import shutil
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import redis
import yaml

from sim.demo.config import RUNNING, DemoConfig, write_firmware
from sim.demo.stack import DemoStack
from sim.pps.packages import build_string

MODES = ("standalone", "active-passive", "active-active")
CHANNELS = 20
REQUESTER = "U_BENCHREQ"
USERNAME_ENV, PASSWORD_ENV = "PPS_BENCH_USERNAME", "PPS_BENCH_PASSWORD"


@dataclass(frozen=True)
class Speed:
    """Bot settings and simulator knobs: how long one upgrade takes."""

    settle: float = 1.0
    poll: float = 0.25
    lease: float = 5.0
    install: float = 0.3
    reboot: float = 0.6
    rejoin: float = 0.3


def cluster_name(i: int) -> str:
    return f"c{i:04d}"


def channel_of(i: int) -> str:
    return f"C0BENCH{i % CHANNELS:02d}"


def approver(n: int) -> str:
    """The n-th approver's user id (every gate is clicked by a different one)."""
    return f"U_BAPP{n:05d}"


class Ports:
    """Distinct free ports: each stays bound until `release`, so no two are the same."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.held: list[socket.socket] = []

    def __call__(self) -> int:
        s = socket.socket()
        s.bind((self.host, 0))
        self.held.append(s)
        return int(s.getsockname()[1])

    def release(self) -> None:
        for s in self.held:
            s.close()
        self.held.clear()


def _cluster_files(i: int, free_port: Ports, speed: Speed, creds: tuple[str, str]
                   ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(inventory entry, simulator entry) of cluster i."""
    host = free_port.host
    name, mode = cluster_name(i), MODES[i % len(MODES)]
    nodes = [f"{name}-{x}" for x in ("a", "b")[: 1 if mode == "standalone" else 2]]
    ports = {n: free_port() for n in nodes}
    jitter = 1.0 + (i % 5) * 0.1  # timings differ a little from cluster to cluster
    inv: dict[str, Any] = {
        "mode": mode, "username_env": USERNAME_ENV, "password_env": PASSWORD_ENV,
        "channel": channel_of(i),
        "nodes": [{"name": n, "url": f"http://{host}:{p}"} for n, p in ports.items()],
    }
    sim: dict[str, Any] = {
        "mode": mode, "username": creds[0], "password": creds[1], "sessions": 5 + i % 50,
        "knobs": {"install_seconds": speed.install * jitter,
                  "reboot_seconds": speed.reboot * jitter,
                  "rejoin_seconds": speed.rejoin * jitter},
        "nodes": [{"name": n, "port": p, "build": build_string(*RUNNING)}
                  for n, p in ports.items()],
    }
    if mode == "active-passive":
        vip = free_port()
        inv["vip"] = f"http://{host}:{vip}"
        sim["vip_port"] = vip
    return inv, sim


def write_deployment(run_dir: Path, clusters: int, *, redis_url: str, speed: Speed,
                     approvers: int, host: str = "127.0.0.1") -> tuple[DemoConfig, int, str]:
    """Firmware, inventory, simulator config and settings; (config, control port, prefix)."""
    creds = ("admin", secrets.token_urlsafe(12))
    free_port = Ports(host)
    catalogue = write_firmware(run_dir)
    (run_dir / "backups").mkdir(exist_ok=True)
    inv, sim = {}, {}
    for i in range(clusters):
        inv[cluster_name(i)], sim[cluster_name(i)] = _cluster_files(i, free_port, speed, creds)
    control = free_port()
    inventory, sim_config = run_dir / "inventory.yml", run_dir / "sim.yml"
    inventory.write_text(yaml.safe_dump({"clusters": inv, "firmware": catalogue}))
    sim_config.write_text(yaml.safe_dump({"host": host, "control_port": control,
                                          "clusters": sim}))
    sim_config.chmod(0o600)
    prefix = f"ppsbench:{uuid.uuid4().hex[:8]}:"
    bot_port, standin_port = free_port(), free_port()
    free_port.release()
    env = {
        "SLACK_BOT_TOKEN": "xoxb-bench-" + secrets.token_hex(12),
        "SLACK_SIGNING_SECRET": secrets.token_hex(16),
        "SLACK_API_URL": f"http://{host}:{standin_port}/api/",
        "PORT": str(bot_port), "HOST": host,
        "REDIS_URL": redis_url, "PPS_REDIS_PREFIX": prefix,
        "PPS_INVENTORY": str(inventory), "PPS_CHANNEL": channel_of(0),
        "PPS_APPROVERS": ",".join(approver(n) for n in range(approvers)),
        "PPS_TWO_PERSON_RULE": "true",
        "PPS_USER_UPGRADES_PER_HOUR": "1000000",
        "PPS_SETTLE_SECONDS": str(speed.settle), "PPS_POLL_SECONDS": str(speed.poll),
        "PPS_REBOOT_TIMEOUT_SECONDS": "300", "PPS_REMINDER_SECONDS": "600",
        "PPS_GATE_TIMEOUT_SECONDS": "3600",
        "PPS_BACKUP_DIR": str(run_dir / "backups"), "PPS_LEASE_SECONDS": str(speed.lease),
        USERNAME_ENV: creds[0], PASSWORD_ENV: creds[1],
        "LOG_FORMAT": "json", "LOG_LEVEL": "INFO",
        # No worker /metrics: workers starting together raced for its one port (the loser
        # exited at start-up), and another run on this machine may hold it.
        "PPS_WORKER_METRICS_PORT": "0",
        # The fleet poll reads every cluster one tick (30 s) after the workers start, and
        # again every PPS_FLEET_POLL_SECONDS: once an hour, no sweep of every idle cluster
        # lands at a random point of a measurement (the first one is waited for).
        "PPS_FLEET_POLL_SECONDS": "3600",
    }
    cfg = DemoConfig(run_dir=run_dir, host=host, inventory=inventory, sim_config=sim_config,
                     bot_port=bot_port, standin_port=standin_port,
                     node_ports={cluster_name(0) + "-a": int(inv[cluster_name(0)]["nodes"][0][
                         "url"].rsplit(":", 1)[1])}, env=env)
    return cfg, control, prefix


@dataclass
class Deployment:
    """A running deployment and how to reach its parts."""

    cfg: DemoConfig
    stack: DemoStack
    control_url: str
    prefix: str
    clusters: int
    calls_seen: int = 0  # Web API calls counted so far (`slack_call_count`)

    @property
    def secret(self) -> str:
        return self.cfg.env["SLACK_SIGNING_SECRET"]

    @property
    def redis_url(self) -> str:
        return self.cfg.env["REDIS_URL"]

    def pids(self) -> dict[str, int]:
        """Process name -> pid of every child (bot, worker-N, simulator, standin)."""
        return {c.name: c.proc.pid for c in self.stack.children if c.proc is not None}

    def sim_log(self, cluster: str) -> dict[str, Any]:
        r = httpx.get(f"{self.control_url}/_sim/clusters/{cluster}/log", timeout=10)
        out: dict[str, Any] = r.json()
        return out

    def slack_calls(self, since: int = 0) -> list[dict[str, Any]]:
        """The Web API calls the stand-in received (from the `since`+1-th on)."""
        r = httpx.get(f"{self.cfg.page_url}_standin/calls", params={"since": since}, timeout=60)
        out: list[dict[str, Any]] = r.json()
        return out

    def slack_call_count(self) -> int:
        """How many Web API calls the stand-in has received so far."""
        self.calls_seen += len(self.slack_calls(self.calls_seen))
        return self.calls_seen

    def configure(self, cluster: str, changes: dict[str, Any]) -> None:
        """Change a simulated cluster's knobs or faults (`PATCH /_sim/clusters/<c>`)."""
        r = httpx.patch(f"{self.control_url}/_sim/clusters/{cluster}", json=changes, timeout=10)
        r.raise_for_status()


def cleanup_prefix(redis_url: str, prefix: str) -> int:
    """Delete every key under `prefix`; how many."""
    r = redis.Redis.from_url(redis_url)
    n = 0
    try:
        keys = list(r.scan_iter(match=f"{prefix}*", count=1000))
        for i in range(0, len(keys), 500):
            n += int(r.delete(*keys[i:i + 500]))
    finally:
        r.close()
    return n


def wait_fleet_read(redis_url: str, prefix: str, clusters: int, within: float) -> float:
    """Wait until the workers' first fleet poll has read every cluster (`fleet:<c>` keys),
    at most `within` seconds; seconds waited. The workers start it one tick (30 s with the
    default PPS_FLEET_POLL_SECONDS) after they start and read every cluster then: figures
    measured during that sweep would carry its load."""
    r = redis.Redis.from_url(redis_url)
    t0 = time.monotonic()
    keys = [f"{prefix}fleet:{cluster_name(i)}" for i in range(clusters)]
    try:
        while time.monotonic() - t0 < within:
            if sum(1 for v in r.mget(keys) if v is not None) >= clusters:
                break
            time.sleep(0.5)
    finally:
        r.close()
    return time.monotonic() - t0


def _enough_files() -> None:
    """Raise this process's open-file limit to its hard limit (the children inherit it):
    the simulator holds a listening socket per node and a connection per client."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Teardowns:
    """Deployments being stopped in the background while the next one starts (stopped
    workers take up to a blocking read, 2 s, to leave); `wait` before measuring anything."""

    def __init__(self) -> None:
        self._threads: list[threading.Thread] = []
        self._errors: list[BaseException] = []

    def add(self, down: Callable[[], None]) -> None:
        def run() -> None:
            try:
                down()
            except BaseException as exc:  # raised again by `wait`, in the caller's thread
                self._errors.append(exc)

        t = threading.Thread(target=run, name="deployment-teardown")
        t.start()
        self._threads.append(t)

    def wait(self) -> None:
        """Return once every deployment handed over is stopped and its keys are removed."""
        for t in self._threads:
            t.join()
        self._threads.clear()
        if self._errors:
            exc, self._errors = self._errors[0], []
            raise exc


@contextmanager
def deployment(clusters: int, *, workers: int = 2, redis_url: str, speed: Speed | None = None,
               approvers: int = 0, standin_rate_limit: int = 0, settle_fleet: bool = False,
               later: Teardowns | None = None) -> Iterator[Deployment]:
    """Start everything (with `settle_fleet`, wait until the first fleet poll is done),
    yield it, then stop every process and remove the Redis keys (with `later`, in the
    background: `later.wait()` before the next measurement). `standin_rate_limit` > 0:
    the Slack stand-in answers 429 above that many calls per second per method (per
    channel for chat.postMessage)."""
    _enough_files()
    tmp = Path(tempfile.mkdtemp(prefix="ppsbench-"))
    stack: DemoStack | None = None
    prefix = ""

    def down() -> None:
        try:
            if stack is not None:
                stack.stop()
                cleanup_prefix(redis_url, prefix)
        finally:
            shutil.rmtree(tmp)

    try:
        cfg, control, prefix = write_deployment(
            tmp, clusters, redis_url=redis_url, speed=speed or Speed(),
            approvers=max(approvers, 2 * clusters + 10))
        stack = DemoStack(cfg, workers=workers, standin_rate_limit=standin_rate_limit)
        stack.start(timeout=120 + clusters / 2)
        if settle_fleet:
            waited = wait_fleet_read(redis_url, prefix, clusters, 60 + clusters / 4)
            print(f"first fleet poll of {clusters} clusters done after {waited:.1f} s",
                  file=sys.stderr)
        yield Deployment(cfg, stack, f"http://{cfg.host}:{control}", prefix, clusters)
    finally:
        if later is None:
            down()
        else:
            later.add(down)
