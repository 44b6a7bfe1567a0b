"""`ppsbot bot` as a real process for tests of its HTTP surface and its log: HTTP mode on a
free port, a minimal inventory, Slack unreachable unless `SLACK_API_URL` is given (the
bot then starts on the token alone), its own Redis prefix. Its log is a file the test reads.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import redis
import yaml

from tests.fakes.net import free_port
from tests.fakes.processes import PYTHON, REDIS_URL, child_env

SECRET = "bot-process-signing-secret-1c9e"
TOKEN = "xoxb-bot-process-token"


def write_inventory(path: Path, nodes: list[dict[str, str]] | None = None,
                    **cluster: Any) -> Path:
    """A one-cluster inventory (`lab`, standalone) the bot accepts (it reads no files)."""
    data = {
        "clusters": {"lab": {"mode": "standalone", "username_env": "LAB_U",
                             "password_env": "LAB_P",
                             "nodes": nodes or [{"name": "lab-1", "url": "https://lab-1.invalid"}],
                             **cluster}},
        "firmware": [{"version": "9.1R18", "file": "pps.pkg", "sha256": "0" * 64}],
    }
    path.write_text(yaml.safe_dump(data))
    return path


class BotProcess:
    """A running `ppsbot bot`; `stop()` ends it and returns its log."""

    def __init__(self, tmp: Path, inventory: Path | None = None, **env: str) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.prefix = f"ppsbotproc:{uuid.uuid4().hex[:8]}:"
        self.log = tmp / f"bot-{self.port}.log"
        inv = inventory or write_inventory(tmp / "inventory.yml")
        self.env = child_env({
            **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PPS_"))},
            "SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": f"http://127.0.0.1:{free_port()}/api/",  # nobody answers
            "REDIS_URL": REDIS_URL, "PPS_REDIS_PREFIX": self.prefix,
            "PPS_INVENTORY": str(inv), "PORT": str(self.port), "LOG_FORMAT": "json",
            "PYTHONUNBUFFERED": "1", **env,
        })
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen([str(PYTHON), "-m", "bot.cli", "bot"], cwd=tmp,
                                         env=self.env, stdout=out, stderr=subprocess.STDOUT)

    def wait_healthy(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"bot exited {self.proc.returncode}:\n{self.text()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"bot not healthy in {timeout}s:\n{self.text()}")
            time.sleep(0.1)

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> str:
        """SIGTERM (kill after 15 s), delete the Redis keys; the whole log."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        r = redis.Redis.from_url(REDIS_URL)
        try:
            for key in r.scan_iter(match=f"{self.prefix}*", count=500):
                r.delete(key)
        finally:
            r.close()
        return self.text()
