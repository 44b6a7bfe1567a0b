"""A private `redis-server` process that the resilience tests kill, freeze and restart.

It listens on 127.0.0.1 on a port of its own and keeps its AOF in its own folder, so a
restart on the same port and folder is what an on-call engineer sees after Redis crashed:
the same address, the data as far as it was persisted (or none: `persist=False`).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.fakes import free_port

REDIS_SERVER = shutil.which("redis-server")


def _ping(port: int) -> bool:
    """True when the server answers PONG (not LOADING, not refused)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisProcess:
    """One redis-server: `start`, `kill` (SIGKILL), `restart`, `freeze`/`thaw` (SIGSTOP/CONT)."""

    def __init__(self, folder: Path, *, persist: bool = True, fsync: str = "always") -> None:
        if REDIS_SERVER is None:
            raise RuntimeError("redis-server is not on PATH")
        self.folder = folder
        self.persist = persist
        self.fsync = fsync
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _args(self) -> list[str]:
        assert REDIS_SERVER is not None
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--dir", str(self.folder), "--save", "", "--protected-mode", "no"]
        args += ["--logfile", str(self.folder / "redis.log"), "--maxmemory-policy", "noeviction"]
        if self.persist:
            args += ["--appendonly", "yes", "--appendfsync", self.fsync]
        else:
            args += ["--appendonly", "no"]
        return args

    async def start(self, within: float = 10.0) -> float:
        """Start the server and wait until it answers PING; returns the seconds it took."""
        t0 = time.monotonic()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.proc = await asyncio.to_thread(
            subprocess.Popen, self._args(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.starts += 1
        while not await asyncio.to_thread(_ping, self.port):
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self.log_tail()}")
            if time.monotonic() - t0 > within:
                raise RuntimeError(f"redis-server did not answer within {within}s")
            await asyncio.sleep(0.02)
        return time.monotonic() - t0

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final AOF flush (what a crash or an OOM kill does)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)  # a frozen server must die too
            self.proc.kill()
        self.proc.wait(5)
        self.proc = None

    async def restart(self, down_for: float = 0.0, *, persist: bool | None = None) -> float:
        """SIGKILL, stay down `down_for` seconds, start on the same port and folder."""
        self.kill()
        if persist is not None:
            self.persist = persist
        if not self.persist:
            for f in self.folder.glob("appendonly*"):  # "restart without persistence"
                shutil.rmtree(f) if f.is_dir() else f.unlink()
        await asyncio.sleep(down_for)
        return await self.start()

    def freeze(self) -> None:
        """SIGSTOP: connections are accepted by the kernel, nothing is answered."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT: the server reads and runs what was sent meanwhile (timed out or not)."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def log_tail(self, lines: int = 20) -> str:
        f = self.folder / "redis.log"
        return "\n".join(f.read_text().splitlines()[-lines:]) if f.exists() else ""
