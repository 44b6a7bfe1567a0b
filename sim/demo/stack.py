"""Run the demo's processes: simulator, Slack stand-in + page, worker, bot (and a Redis).

Each child runs in its own process group (so Ctrl-C on the terminal reaches only the demo,
which then stops the children in order), logs to `<run_dir>/logs/<name>.log`, and is
stopped with SIGTERM, then SIGKILL for the whole group after a timeout. Used by
`ppsbot demo` and by the browser test.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

from sim.demo.config import CHANNEL, DemoConfig

# Inherited variables that would change what the children talk to (a developer's shell
# may hold real Slack tokens or another inventory); the demo sets its own.
_STRIPPED_PREFIXES = ("SLACK_", "PPS_")
WORKER_GRACE_SECONDS = 5.0
READY_POLL_SECONDS = 0.05


class DemoError(RuntimeError):
    """A child failed to start or died; the message says which and where its log is."""


@dataclass
class Child:
    """One child process and its log file."""

    name: str
    argv: list[str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, lines: int = 15) -> str:
        """The end of the child's log, for error messages."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def child_env(cfg_env: Mapping[str, str], base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for children: the parent's minus SLACK_*/PPS_*, plus the demo's."""
    src = os.environ if base is None else base
    env = {k: v for k, v in src.items() if not k.startswith(_STRIPPED_PREFIXES)}
    env.update(cfg_env)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class DemoStack:
    """The demo's children, started in dependency order and stopped together."""

    cfg: DemoConfig
    python: str = sys.executable
    workers: int = 1
    redis_server: str | None = None  # path of redis-server when the demo runs its own
    redis_port: int | None = None
    standin_rate_limit: int = 0  # the stand-in answers 429 above this many calls/s (0: off)
    children: list[Child] = field(default_factory=list)
    # One client for every readiness probe of a start: `httpx.get` builds a client (and an
    # SSL context) per call, about 35 ms of CPU, taken from the children starting.
    _http: httpx.Client | None = field(default=None, init=False, repr=False)

    def _child(self, name: str, argv: list[str]) -> Child:
        c = Child(name=name, argv=argv, log=self.cfg.logs / f"{name}.log")
        self.children.append(c)
        return c

    def _spawn(self, c: Child) -> None:
        self.cfg.logs.mkdir(parents=True, exist_ok=True)
        with c.log.open("wb") as log:
            # cwd is the run directory: no stray `.env` of the checkout is read by children.
            c.proc = subprocess.Popen(
                c.argv,
                cwd=self.cfg.run_dir,
                env=child_env(self.cfg.env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def plan(self) -> list[Child]:
        """The children to run, in start order (redis first when private)."""
        py, cfg = self.python, self.cfg
        if not self.children:
            if self.redis_server and self.redis_port:
                rdir = cfg.run_dir / "redis"
                rdir.mkdir(exist_ok=True)
                self._child("redis", [self.redis_server, "--port", str(self.redis_port),
                                      "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                      "--dir", str(rdir)])
            self._child("simulator", [py, "-m", "bot.cli", "simulator", "--config",
                                      str(cfg.sim_config), "--host", cfg.host])
            limit = (["--rate-limit", str(self.standin_rate_limit)]
                     if self.standin_rate_limit > 0 else [])
            self._child("standin", [py, "-m", "sim.slack.channel_page", "--host", cfg.host,
                                    "--port", str(cfg.standin_port), "--bot-url", cfg.events_url,
                                    "--channel", CHANNEL, *limit])
            for i in range(1, self.workers + 1):
                self._child(f"worker-{i}", [py, "-m", "bot.cli", "worker", "--name",
                                            f"demo-worker-{i}"])
            self._child("bot", [py, "-m", "bot.cli", "bot"])
        return self.children

    def start(self, timeout: float = 60.0, stop: threading.Event | None = None) -> float:
        """Start everything and wait until each part answers; seconds it took."""
        with httpx.Client(timeout=1.0) as self._http:
            try:
                return self._start(timeout, stop)
            finally:
                self._http = None

    def _start(self, timeout: float, stop: threading.Event | None) -> float:
        t0 = time.monotonic()
        deadline = t0 + timeout
        by_name = {c.name: c for c in self.plan()}
        if "redis" in by_name:
            self._spawn(by_name["redis"])
            self._wait("redis", self._redis_ready, deadline, stop)
        for c in self.children:
            if c.name not in ("redis", "bot"):
                self._spawn(c)
        # Bolt calls auth.test while it starts: the stand-in must answer first.
        self._wait("standin", self._standin_ready, deadline, stop)
        self._spawn(by_name["bot"])
        self._wait("simulator", self._sim_ready, deadline, stop)
        for c in self.children:
            if c.name.startswith("worker-"):
                self._wait(c.name, self._worker_ready(c.name), deadline, stop)
        self._wait("bot", self._bot_ready, deadline, stop)
        return time.monotonic() - t0

    def _wait(
        self,
        name: str,
        ready: Callable[[], bool],
        deadline: float,
        stop: threading.Event | None,
    ) -> None:
        child = next(c for c in self.children if c.name == name)
        while True:
            if stop is not None and stop.is_set():
                raise DemoError("interrupted while starting")
            if not child.alive:
                raise DemoError(f"{name} exited during start-up; log {child.log}:\n{child.tail()}")
            if ready():
                return
            if time.monotonic() > deadline:
                raise DemoError(f"{name} did not answer in time; log {child.log}:\n{child.tail()}")
            time.sleep(READY_POLL_SECONDS)

    # -- readiness probes -------------------------------------------------------------
    def _get(self, url: str) -> httpx.Response:
        return httpx.get(url, timeout=1.0) if self._http is None else self._http.get(url)

    def _get_ok(self, url: str) -> bool:
        try:
            return self._get(url).status_code < 500
        except httpx.HTTPError:
            return False

    def _redis_ready(self) -> bool:
        try:
            return bool(redis.Redis(port=self.redis_port or 6379, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def _standin_ready(self) -> bool:
        return self._get_ok(self.cfg.page_url + "_standin/state")

    def _sim_ready(self) -> bool:
        host = self.cfg.host
        return all(
            self._get_ok(f"http://{host}:{p}/dana-na/healthcheck/healthcheck.cgi?status=all")
            for p in self.cfg.node_ports.values()
        )

    def _bot_ready(self) -> bool:
        try:
            return self._get(self.cfg.bot_url + "/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    def _worker_ready(self, name: str) -> Callable[[], bool]:
        child = next(c for c in self.children if c.name == name)
        started = time.monotonic()

        def ready() -> bool:
            # The worker logs "worker started" once its scheduler runs and it consumes.
            # Redis 7.0 registers a consumer only when it first receives an item, so the
            # group cannot tell; a worker alive for a few seconds counts as started too.
            try:
                if "worker started" in child.log.read_text(errors="replace"):
                    return True
            except OSError:
                pass
            return time.monotonic() - started > WORKER_GRACE_SECONDS

        return ready

    # -- stopping ---------------------------------------------------------------------
    def dead(self) -> list[Child]:
        """Children that were started and have exited."""
        return [c for c in self.children if c.proc is not None and not c.alive]

    def stop(self, timeout: float = 10.0) -> list[str]:
        """SIGTERM every group (bot and workers first), SIGKILL what is left; names killed."""
        order = sorted(self.children, key=lambda c: (c.name == "redis", c.name != "bot"))
        for c in order:
            _signal_group(c, signal.SIGTERM)
        killed: list[str] = []
        deadline = time.monotonic() + timeout
        for c in order:
            if c.proc is None:
                continue
            try:
                c.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                killed.append(c.name)
                _signal_group(c, signal.SIGKILL)
                c.proc.wait(timeout=5)
            # Anything the child started in its group goes too.
            _signal_group(c, signal.SIGKILL)
        return killed

    def leftovers(self) -> list[int]:
        """Process group ids of children that still have a live member."""
        left = []
        for c in self.children:
            if c.proc is None:
                continue
            try:
                os.killpg(c.proc.pid, 0)
            except ProcessLookupError:
                continue
            except PermissionError:
                pass
            left.append(c.proc.pid)
        return left


def _signal_group(c: Child, sig: signal.Signals) -> None:
    if c.proc is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(c.proc.pid, sig)  # pgid == pid: start_new_session made it the leader
