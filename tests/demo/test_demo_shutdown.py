"""Ctrl-C of `ppsbot demo` with the channel page open: the page keeps a long-poll request
open on the stand-in, which used to hold the stand-in's shutdown until the demo killed it
(10 s, "killed after timeout: standin"). Live page connections are closed on shutdown now."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest


@pytest.mark.slow
def test_demo_ctrl_c_with_a_page_open_stops_quickly_and_kills_nothing(
    tmp_path: Path, start_demo: Callable[[Path], Any], pid_alive: Callable[[int], bool]
) -> None:
    demo = start_demo(tmp_path / "run")
    status = demo.wait_up()
    page = str(status["page_url"])
    version = httpx.get(page + "_standin/state", timeout=5).json()["version"]
    answered: list[Any] = []

    def long_poll() -> None:  # what the page does: wait for the next change
        try:
            r = httpx.get(page + "_standin/state",
                          params={"since": str(version), "viewer": "U_REQUESTER"}, timeout=30)
            answered.append(r.status_code)
        except httpx.HTTPError as exc:
            answered.append(type(exc).__name__)

    polls = [threading.Thread(target=long_poll, daemon=True) for _ in range(2)]
    for t in polls:
        t.start()
    time.sleep(1.0)  # both requests are waiting on the stand-in now
    assert answered == []
    started = time.monotonic()
    assert demo.interrupt(signal.SIGINT) == 0, demo.output()
    took = time.monotonic() - started
    out = demo.output()
    assert "killed after timeout" not in out, out
    assert "no process left" in out, out
    assert took < 3.0, f"Ctrl-C took {took:.1f} s\n{out}"
    assert [n for n, p in status["pids"].items() if pid_alive(p)] == []
    for t in polls:
        t.join(5)
    assert answered == [200, 200]  # the page got an answer, not a reset
