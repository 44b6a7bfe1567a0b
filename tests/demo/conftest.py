"""Fixtures for the demo tests: a uvicorn server in a thread, Chromium + Playwright, and a
scripted fake of the stand-in's control API for page-only browser tests.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sim.slack.channel_page import routes as page_routes
from tests.fakes import PYTHON, REDIS_URL, ROOT, child_env, free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


class ThreadedServer:
    """Serve an ASGI app with uvicorn on a background thread (port 0 unless given)."""

    def __init__(self, app: Any, port: int = 0) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.port = port

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        sock = self.server.servers[0].sockets[0]
        self.port = int(sock.getsockname()[1])
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


EMOJI_FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"


def _apt_install(*packages: str) -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *packages]):
        subprocess.run(argv, check=False, timeout=900, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def ensure_chromium() -> str:
    """Debian's Chromium (and an emoji font, so the cards' status icons render), installed
    with apt when missing and we are root; without Chromium the browser tests skip."""
    missing = [pkg for pkg, path in (("chromium", CHROMIUM),
                                     ("fonts-noto-color-emoji", EMOJI_FONT))
               if not os.path.exists(path)]
    if missing and os.geteuid() == 0 and shutil.which("apt-get"):
        _apt_install(*missing)
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    pytest.skip(f"{CHROMIUM} is missing; install it with `sudo apt-get install -y chromium`")


@pytest.fixture
def chromium_browser() -> Iterator[Any]:
    """A headless Chromium driven by Playwright (never `playwright install`).

    Function-scoped on purpose: Playwright's sync API runs an event loop in this thread
    while it is open, which would break every asyncio test that runs after it."""
    exe = ensure_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


# -- a scripted fake of the stand-in's control API ------------------------------------


@dataclass
class FakeStandin:
    """The documented `/_standin/*` API over a dict the test edits directly."""

    users: list[dict[str, str]] = field(
        default_factory=lambda: [
            {"id": "U_REQUESTER", "name": "riley.requester", "role": "requester"},
            {"id": "U_APPROVER1", "name": "alex.approver", "role": "approver"},
            {"id": "U_APPROVER2", "name": "sam.approver", "role": "approver"},
            {"id": "U_STRANGER", "name": "casey.stranger", "role": "stranger"},
        ]
    )
    channels: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    commands: list[dict[str, Any]] = field(default_factory=list)
    clicks: list[dict[str, Any]] = field(default_factory=list)
    state_requests: list[dict[str, str]] = field(default_factory=list)
    version: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def post(self, channel: str, ts: str, text: str = "", **fields: Any) -> dict[str, Any]:
        """Add a message (fields as in the state API) and bump the version."""
        msg: dict[str, Any] = {
            "ts": ts, "thread_ts": None, "user": "U_PPSBOT", "text": text, "blocks": [],
            "metadata": None, "edited": False, "reply_broadcast": False, "ephemeral_for": None,
        }
        msg.update(fields)
        with self.lock:
            self.channels.setdefault(channel, []).append(msg)
            self.version += 1
        return msg

    def update(self, channel: str, ts: str, **fields: Any) -> None:
        with self.lock:
            for m in self.channels[channel]:
                if m["ts"] == ts:
                    m.update(fields, edited=True)
            self.version += 1

    def snapshot(self, viewer: str) -> dict[str, Any]:
        with self.lock:
            return {
                "version": self.version,
                "users": list(self.users),
                "channels": {
                    c: [m for m in ms if m["ephemeral_for"] in (None, viewer)]
                    for c, ms in self.channels.items()
                },
            }

    def app(self, extra: list[BaseRoute]) -> Starlette:
        async def state(request: Request) -> Response:
            viewer = request.query_params.get("viewer", "")
            since = request.query_params.get("since")
            self.state_requests.append(dict(request.query_params))
            deadline = time.monotonic() + 1.0
            while since is not None and int(since) == self.version:
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            return JSONResponse(self.snapshot(viewer))

        async def command(request: Request) -> Response:
            body = await request.json()
            self.commands.append(body)
            return JSONResponse({"status": 200, "body": {"text": "ok"}})

        async def click(request: Request) -> Response:
            body = await request.json()
            self.clicks.append(body)
            return JSONResponse({"status": 200})

        return Starlette(
            routes=[
                Route("/_standin/state", state),
                Route("/_standin/command", command, methods=["POST"]),
                Route("/_standin/click", click, methods=["POST"]),
                *extra,
            ]
        )


@pytest.fixture
def fake_standin() -> Iterator[tuple[FakeStandin, str]]:
    """A running fake stand-in with the real channel page; yields (fake, base URL)."""
    fake = FakeStandin()
    with ThreadedServer(fake.app(page_routes(channel="C0PPSDEMO"))) as srv:
        yield fake, srv.url


# -- `ppsbot demo` as a child process ------------------------------------------------

class DemoProcess:
    """`python -m bot.cli demo` (fast timings, a free page port) as a child process."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.out = run_dir.parent / f"{run_dir.name}-stdout.log"
        env = child_env(dict(os.environ, PPS_DEMO_DIR=str(run_dir), PPS_DEMO_TIMINGS="fast",
                             PPS_DEMO_PORT=str(free_port()), REDIS_URL=REDIS_URL))
        with self.out.open("wb") as out:
            self.proc = subprocess.Popen([str(PYTHON), "-m", "bot.cli", "demo"], cwd=ROOT,
                                         env=env, stdout=out, stderr=subprocess.STDOUT)
        self.status: dict[str, Any] = {}

    def wait_up(self, timeout: float = 60.0) -> dict[str, Any]:
        """Wait for `demo.json` (written once every part answers) and return it."""
        path = self.run_dir / "demo.json"
        deadline = time.monotonic() + timeout
        while not path.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"demo did not start:\n{self.output()}\n{self.logs()}")
            time.sleep(0.1)
        self.status = json.loads(path.read_text())
        return self.status

    def output(self) -> str:
        return self.out.read_text(errors="replace") if self.out.exists() else ""

    def logs(self, lines: int = 25) -> str:
        """The tail of every child's log, for failure messages."""
        parts = []
        for log in sorted((self.run_dir / "logs").glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {log.name}\n" + "\n".join(tail))
        return "\n".join(parts)

    def wait(self, timeout: float) -> int:
        """Exit status, or -9 after killing it when it does not exit in time."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return -9

    def interrupt(self, sig: signal.Signals = signal.SIGINT, timeout: float = 30.0) -> int:
        """Send `sig` (Ctrl-C by default) and wait for the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait(timeout)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie still exists but no longer runs
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


@pytest.fixture
def pid_alive() -> Callable[[int], bool]:
    return _pid_alive


@pytest.fixture
def start_demo() -> Iterator[Callable[[Path], DemoProcess]]:
    """Start `ppsbot demo` children; any still running at teardown get SIGINT, then kill."""
    started: list[DemoProcess] = []

    def start(run_dir: Path) -> DemoProcess:
        d = DemoProcess(run_dir)
        started.append(d)
        return d

    yield start
    for d in started:
        d.interrupt()
