"""`ppsbot demo` as a process: SIGTERM stops everything, a dying child stops the demo,
and without any Redis it says how to get one."""

from __future__ import annotations

import importlib
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# The module itself: `sim.demo` re-exports the function `main`, which hides the submodule.
demo_main = importlib.import_module("sim.demo.main")


@pytest.fixture
def restore_signals() -> Iterator[None]:
    """`sim.demo.main.main` installs SIGINT/SIGTERM handlers; put pytest's back."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for s, h in saved.items():
        signal.signal(s, h)


def test_no_redis_and_no_redis_server_explains_how_to_get_one(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    restore_signals: None,
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("PPS_DEMO_DIR", str(tmp_path / "run"))
    monkeypatch.setattr(demo_main.shutil, "which", lambda _name: None)
    assert demo_main.main() == 1
    err = capsys.readouterr().err
    assert "No Redis answers at redis://127.0.0.1:1/0" in err
    assert "sudo apt-get install -y redis-server" in err
    assert "export REDIS_URL=" in err
    assert not (tmp_path / "run").exists()  # nothing started, nothing written


@pytest.mark.slow
def test_sigterm_stops_every_child(
    tmp_path: Path, start_demo: Callable[[Path], Any], pid_alive: Callable[[int], bool]
) -> None:
    demo = start_demo(tmp_path / "run")
    status = demo.wait_up()
    pids = status["pids"]
    assert set(pids) == {"simulator", "standin", "worker-1", "bot"}
    assert all(pid_alive(p) for p in pids.values())
    assert demo.interrupt(signal.SIGTERM) == 0, demo.output()
    assert "no process left" in demo.output()
    assert [n for n, p in pids.items() if pid_alive(p)] == []


@pytest.mark.slow
def test_a_dying_child_stops_the_demo(
    tmp_path: Path, start_demo: Callable[[Path], Any], pid_alive: Callable[[int], bool]
) -> None:
    demo = start_demo(tmp_path / "run")
    pids = demo.wait_up()["pids"]
    os.kill(pids["worker-1"], signal.SIGKILL)
    assert demo.wait(timeout=20) == 1, demo.output()
    out = demo.output()
    assert "worker-1 stopped unexpectedly" in out
    assert "no process left" in out
    assert [n for n, p in pids.items() if pid_alive(p)] == []
