"""`ppsbot demo`: the whole product on one machine, watched in a local Slack-like page.

Finds Redis at `REDIS_URL` (or starts a private `redis-server`), writes `./demo-run/`
(firmware packages, inventory, simulator config), starts the simulator, the Slack
stand-in with the channel page, a worker and the bot with short timings, prints the URL
and waits. Ctrl-C (SIGINT) or SIGTERM stops every child and deletes the demo's Redis keys.

Knobs (environment): `PPS_DEMO_DIR` (default `demo-run`), `PPS_DEMO_HOST` (`127.0.0.1`),
`PPS_DEMO_PORT` (the page, default 8080, another free port when taken),
`PPS_DEMO_WORKERS` (1), `PPS_DEMO_TIMINGS` (`demo`: settle 20 s, simulated reboots of
seconds; `fast`: the browser test's few-second run). `<run_dir>/demo.json` names the URLs
and the child pids while the demo runs.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

import redis

from sim.demo.config import (
    CLUSTERS,
    DEMO_TIMINGS,
    FAST_TIMINGS,
    DemoConfig,
    free_port,
    write_demo,
)
from sim.demo.stack import DemoError, DemoStack

REDIS_HELP = """\
No Redis answers at {url}, and redis-server is not installed.
Get one of these, then run the demo again:
  - Debian/Ubuntu:  sudo apt-get install -y redis-server
  - macOS:          brew install redis
  - Docker:         docker run -d -p 6379:6379 redis:7
  - elsewhere:      export REDIS_URL=redis://<host>:<port>/0
"""


def _redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except (redis.RedisError, ValueError):
        return False


def delete_prefix(url: str, prefix: str) -> int:
    """Delete the demo's keys (never the whole database); how many went."""
    try:
        r = redis.Redis.from_url(url, socket_timeout=5)
        n = 0
        for key in r.scan_iter(match=f"{prefix}*", count=500):
            n += int(r.unlink(key))
        return n
    except redis.RedisError:
        return 0


def banner(cfg: DemoConfig, startup: float) -> str:
    """What the user reads once everything answers."""
    clusters = ", ".join(f"{n} ({m[0]}, {len(m[1])} node{'s' * (len(m[1]) > 1)})"
                         for n, m in CLUSTERS.items())
    return f"""
  pps-chatops demo is up (started in {startup:.1f} s)

    open  {cfg.page_url}

  clusters   {clusters}, all at 9.1R17; 9.1R18 is in the catalogue
  try        /pps upgrade cluster-east   as riley.requester,
             then switch to alex.approver / sam.approver to approve the two gates
  timings    settle {cfg.env['PPS_SETTLE_SECONDS']} s, poll {cfg.env['PPS_POLL_SECONDS']} s
  files      {cfg.run_dir}  (inventory.yml, sim.yml, backups/, logs/)
  redis      {cfg.env['REDIS_URL']}  keys under {cfg.env['PPS_REDIS_PREFIX']}

  Ctrl-C stops everything.
"""


def write_status(cfg: DemoConfig, stack: DemoStack, startup: float) -> None:
    """`<run_dir>/demo.json`: URLs, start-up time and child pids (for scripts and tests)."""
    status = {
        "page_url": cfg.page_url,
        "bot_url": cfg.bot_url,
        "redis_url": cfg.env["REDIS_URL"],
        "redis_prefix": cfg.env["PPS_REDIS_PREFIX"],
        "startup_seconds": round(startup, 2),
        "pids": {c.name: c.proc.pid for c in stack.children if c.proc is not None},
    }
    (cfg.run_dir / "demo.json").write_text(json.dumps(status, indent=2) + "\n")


def main() -> int:
    """Run the demo until Ctrl-C; exit status 0 on a clean stop."""
    t0 = time.monotonic()
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    run_dir = Path(os.environ.get("PPS_DEMO_DIR", "demo-run"))
    host = os.environ.get("PPS_DEMO_HOST", "127.0.0.1")
    page_port = int(os.environ.get("PPS_DEMO_PORT", "8080"))
    workers = max(1, int(os.environ.get("PPS_DEMO_WORKERS", "1")))
    timings = FAST_TIMINGS if os.environ.get("PPS_DEMO_TIMINGS") == "fast" else DEMO_TIMINGS
    redis_url = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
    redis_server: str | None = None
    redis_port: int | None = None
    if _redis_answers(redis_url):
        print(f"redis: using {redis_url}")
    else:
        redis_server = shutil.which("redis-server")
        if redis_server is None:
            print(REDIS_HELP.format(url=redis_url), file=sys.stderr)
            return 1
        redis_port = free_port()
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
        print(f"redis: nothing at the configured URL; starting a private one at {redis_url}")

    prefix = f"ppsdemo:{secrets.token_hex(3)}:"
    cfg = write_demo(run_dir, redis_url=redis_url, prefix=prefix, timings=timings,
                     host=host, standin_port=page_port)
    (cfg.run_dir / "demo.json").unlink(missing_ok=True)  # a previous run's
    stack = DemoStack(cfg, workers=workers, redis_server=redis_server, redis_port=redis_port)
    rc = 0
    try:
        print("starting simulator, Slack stand-in, worker and bot …", flush=True)
        stack.start(timeout=90.0, stop=stop)
        startup = time.monotonic() - t0
        write_status(cfg, stack, startup)
        print(banner(cfg, startup), flush=True)
        while not stop.wait(0.5):
            dead = stack.dead()
            if dead:
                c = dead[0]
                print(f"\n{c.name} stopped unexpectedly; log {c.log}:\n{c.tail()}",
                      file=sys.stderr)
                rc = 1
                break
    except DemoError as exc:
        if not stop.is_set():
            print(f"demo failed to start: {exc}", file=sys.stderr)
            rc = 1
    finally:
        print("\nstopping …", flush=True)
        t1 = time.monotonic()
        killed = stack.stop()
        left = stack.leftovers()
        if redis_server is None:  # a private Redis went away with its data
            delete_prefix(redis_url, prefix)
        note = f" (killed after timeout: {', '.join(killed)})" if killed else ""
        print(f"stopped in {time.monotonic() - t1:.1f} s{note}; "
              f"{'no process left' if not left else f'process groups left: {left}'}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
