"""Item 1: the `/pps` ack under 20 and 100 concurrent clients, `ppsbot bot` beside a bare
Bolt app (`benchmarks.bare_bolt`) under the same server settings, interleaved in rounds.

Each client has its own keep-alive connection and sends signed commands one after the
other (help, list, status, history, clusters, a dry run), as a different user; the time
measured is request sent -> ack received. Rounds alternate which server goes first.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from benchmarks.deployment import Deployment, channel_of, cluster_name
from benchmarks.stats import Figure, percentile
from sim.demo.config import free_port
from sim.slack.signing import Signer, slash_command_body

# One TLS context for every client: httpx builds one per client otherwise (20 ms of CPU each,
# which put 2 s of the load generator's own work into the first requests of a 100-client
# burst and made the bare Bolt app's p99 3.0 s).
_TLS = httpx.create_ssl_context()


# The bot's answer when a command failed on its side (`handlers.replies.Failed`): fast, and
# not a command answered. Counted per URL, reported with the figures (target 0).
FAILED_REPLY = "went wrong on my side"
FAILED: dict[str, int] = {}


def texts(clusters: int, n: int) -> list[str]:
    """The command mix for client n."""
    c = cluster_name(n % clusters)
    return ["help", "list", "status", "history", "clusters", f"upgrade {c} --dry-run"]


async def _client(url: str, secret: str, n: int, clusters: int, count: int) -> list[float]:
    signer = Signer(url, secret)
    out: list[float] = []
    mix = texts(clusters, n)
    async with httpx.AsyncClient(timeout=30, verify=_TLS) as http:
        for i in range(count):
            body = slash_command_body(user_id=f"U_BCLI{n:04d}", channel_id=channel_of(n),
                                      text=mix[(i + n) % len(mix)], response_url="http://x/")
            t0 = time.perf_counter()
            resp = await signer.send(http, body)
            out.append((time.perf_counter() - t0) * 1000)
            if resp.status_code != 200:
                raise RuntimeError(f"ack answered {resp.status_code}: {resp.text[:200]}")
            if FAILED_REPLY in resp.text:  # answered in time, but the command failed
                FAILED[url] = FAILED.get(url, 0) + 1
    return out


async def burst(url: str, secret: str, clients: int, per_client: int, clusters: int
                ) -> list[float]:
    """`clients` concurrent clients, `per_client` commands each; latencies in ms."""
    parts = await asyncio.gather(*(_client(url, secret, n, clusters, per_client)
                                   for n in range(clients)))
    return [x for p in parts for x in p]


@contextmanager
def bare_bolt(secret: str, host: str = "127.0.0.1") -> Iterator[str]:
    """The baseline app as its own process; yields its events URL."""
    port = free_port(host)
    env = {**os.environ, "SLACK_SIGNING_SECRET": secret}
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.bare_bolt", "--host", host,
                             "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        # One client for every probe: `httpx.get` builds one per call (~35 ms of CPU).
        with httpx.Client(timeout=1) as http:
            for _ in range(300):
                try:
                    if http.get(f"http://{host}:{port}/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.05)
            else:
                raise RuntimeError("the bare Bolt app did not start")
        yield f"http://{host}:{port}/slack/events"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def measure(dep: Deployment, concurrency: tuple[int, ...], rounds: int,
                  per_client: int) -> tuple[list[Figure], dict[str, Any]]:
    """Figures for each concurrency: p50 and p99 of the bot against the bare app."""
    figures: list[Figure] = []
    details: dict[str, Any] = {}
    failed0 = FAILED.get(dep.cfg.events_url, 0)
    with bare_bolt(dep.secret) as bare_url:
        for url in (dep.cfg.events_url, bare_url):  # warm both
            await burst(url, dep.secret, 5, 2, dep.clusters)
        for c in concurrency:
            bot: list[float] = []
            base: list[float] = []
            for r in range(rounds):
                order = [(dep.cfg.events_url, bot), (bare_url, base)]
                for url, sink in order if r % 2 == 0 else reversed(order):
                    sink.extend(await burst(url, dep.secret, c, per_client, dep.clusters))
            for q in (50, 99):
                figures.append(Figure("1", f"ack p{q}, {c} concurrent clients",
                                      percentile(bot, q), "ms", percentile(base, q),
                                      "p99 ratio <= 1.1x" if q == 99 else "",
                                      "baseline: bare Bolt AsyncApp"))
            details[f"clients_{c}"] = {"requests": len(bot), "bot_ms": summary(bot),
                                       "bare_bolt_ms": summary(base)}
    figures.append(failed_figure(FAILED.get(dep.cfg.events_url, 0) - failed0, ""))
    return figures, details


def failed_figure(count: int, where: str) -> Figure:
    """The row that says how many commands the bot answered with its failure reply."""
    return Figure("1", f"commands answered \"something went wrong\"{where}", count, "",
                  None, "0", "fast, but not an answer: counted apart from the latencies")


def summary(xs: list[float]) -> dict[str, float]:
    return {"p50": percentile(xs, 50), "p99": percentile(xs, 99),
            "max": max(xs, default=float("nan"))}
