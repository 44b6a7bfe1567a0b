"""Ack latency of `/pps`: p50/p99 over N signed slash commands (a figure, not a test).

Against a running bot:

    .venv/bin/python -m benchmarks.ack_latency --url http://127.0.0.1:3000/slack/events \
        --secret "$SLACK_SIGNING_SECRET" [--count 200] [--text "status"]

Self-contained (starts the Slack stand-in and the bot in-process on a private Redis key
prefix at $REDIS_URL, removes its keys afterwards):

    .venv/bin/python -m benchmarks.ack_latency --self-contained

Each command is signed exactly as Slack signs it and sent one after the other over one
keep-alive connection; the time measured is request sent -> ack body received. The default
mix cycles `upgrade lab --dry-run` (a job is created, then refused as busy), `status`,
`list`, `status lab` and `history`.

In self-contained mode the same run also measures a baseline side by side: a bare Starlette
endpoint under the same uvicorn that only checks the v0 signature and answers an ephemeral
text (the least any Slack app must do). The bot's p50/p99 are reported as ratios to it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from sim.slack.signing import Signer, slash_command_body

MIX = ("upgrade lab --dry-run", "status", "list", "status lab", "history")


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), nearest-rank."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(q / 100 * len(s) + 0.5) - 1))
    return s[k]


async def measure(url: str, secret: str, count: int, texts: tuple[str, ...]) -> list[float]:
    """Send `count` signed commands; return each ack's latency in seconds."""
    signer = Signer(url, secret)
    out: list[float] = []
    async with httpx.AsyncClient(timeout=10) as client:
        await signer.send(client, slash_command_body(  # warm the connection
            user_id="U_BENCH", channel_id="C_BENCH", text="help", response_url="http://x/"))
        for i in range(count):
            body = slash_command_body(user_id="U_BENCH", channel_id="C_BENCH",
                                      text=texts[i % len(texts)], response_url="http://x/")
            t0 = time.perf_counter()
            resp = await signer.send(client, body)
            out.append(time.perf_counter() - t0)
            if resp.status_code != 200:
                raise SystemExit(f"command {i} answered {resp.status_code}: {resp.text[:200]}")
    return out


def _free_socket() -> socket.socket:
    # IPPROTO_TCP explicitly, as uvicorn's own binding does: asyncio then sets TCP_NODELAY
    # on accepted connections (without it Nagle adds ~40 ms to responses with a body).
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    return s


async def _started(server: Any) -> None:
    for _ in range(1000):
        if server.started:
            return
        await asyncio.sleep(0.01)
    raise SystemExit("the in-process server did not start")


def baseline_app(secret: str) -> Any:
    """The least a Slack command endpoint does: verify the signature, answer ephemerally."""
    import hashlib
    import hmac

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    async def events(request: Request) -> Response:
        body = await request.body()
        ts = request.headers.get("x-slack-request-timestamp", "")
        mac = hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256)
        if not hmac.compare_digest("v0=" + mac.hexdigest(), request.headers.get(
                "x-slack-signature", "")) or abs(time.time() - float(ts or 0)) > 300:
            return Response(status_code=401)
        return JSONResponse({"response_type": "ephemeral", "text": "ok `J-0000`"})

    return Starlette(routes=[Route("/slack/events", events, methods=["POST"])])


@asynccontextmanager
async def serve_baseline(secret: str) -> AsyncIterator[str]:
    """The baseline endpoint under uvicorn on a free port; yields its URL."""
    import uvicorn

    sock = _free_socket()
    server = uvicorn.Server(uvicorn.Config(baseline_app(secret), log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await _started(server)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/slack/events"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def self_contained(secret: str) -> AsyncIterator[str]:
    """Stand-in + bot (with its notifier) under uvicorn on free ports; yields the bot URL."""
    import uvicorn

    from bot.server import build
    from jobs.config.inventory import parse_inventory
    from jobs.config.settings import Settings
    from jobs.store.redis_client import make_redis
    from sim.slack.standin import create_standin_app

    bot_sock, standin_sock = _free_socket(), _free_socket()
    bot_url = f"http://127.0.0.1:{bot_sock.getsockname()[1]}/slack/events"
    standin_url = f"http://127.0.0.1:{standin_sock.getsockname()[1]}"
    prefix = f"ppsbench:{uuid.uuid4().hex[:8]}:"
    settings = Settings(
        _env_file=None, SLACK_BOT_TOKEN="xoxb-bench", SLACK_SIGNING_SECRET=secret,
        SLACK_API_URL=standin_url + "/api/", PPS_REDIS_PREFIX=prefix,
        REDIS_URL=os.environ.get("REDIS_URL", "redis://localhost:6379/0"),
        PPS_CHANNEL="C_BENCH", PPS_APPROVERS="S_APPROVERS",
    )
    with tempfile.TemporaryDirectory() as tmp:
        inventory = parse_inventory({
            "clusters": {"lab": {"mode": "standalone", "username_env": "U", "password_env": "P",
                                 "nodes": [{"name": "lab-1", "url": "https://lab-1.invalid"}]}},
            "firmware": [{"version": "9.1R18", "file": "pps.pkg", "sha256": "0" * 64}],
        }, Path(tmp), env={}, check_files=False, check_env=False)
        redis = make_redis(settings.REDIS_URL)
        rt = build(settings, redis, inventory, consumer="bench")
        servers = []
        for app, sock in ((create_standin_app(bot_url, secret), standin_sock), (rt.web, bot_sock)):
            server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
            task = asyncio.create_task(server.serve(sockets=[sock]))
            await _started(server)
            servers.append((server, task))
        try:
            yield bot_url
        finally:
            for server, task in reversed(servers):
                server.should_exit = True
                await task
            async for key in redis.scan_iter(match=f"{prefix}*", count=500):
                await redis.delete(key)
            await redis.aclose()


async def _amain(args: argparse.Namespace) -> None:
    texts = (args.text,) if args.text else MIX
    if args.self_contained:
        from jobs.config.log import configure_logging

        configure_logging("WARNING", "console")
        secret = args.secret or "bench-secret"
        async with self_contained(secret) as url, serve_baseline(secret) as base_url:
            lat, base = [], []
            # Interleave in blocks of 20 so both see the same machine load.
            for _ in range(max(1, args.count // 20)):
                lat += await measure(url, secret, 20, texts)
                base += await measure(base_url, secret, 20, texts)
        _report(lat, texts)
        b = [x * 1000 for x in base]
        m = [x * 1000 for x in lat]
        print(f"baseline (signature check + ephemeral answer, same server): "
              f"p50 {percentile(b, 50):.1f} ms   p99 {percentile(b, 99):.1f} ms")
        print(f"ratio bot/baseline: p50 {percentile(m, 50) / percentile(b, 50):.2f}x   "
              f"p99 {percentile(m, 99) / percentile(b, 99):.2f}x   "
              f"p99 uses {percentile(m, 99) / 3000:.2%} of Slack's 3000 ms ack budget")
        return
    if not args.secret:
        raise SystemExit("--secret or SLACK_SIGNING_SECRET is required")
    _report(await measure(args.url, args.secret, args.count, texts), texts)


def _report(lat: list[float], texts: tuple[str, ...]) -> None:
    ms = [x * 1000 for x in lat]
    print(f"/pps ack latency over {len(ms)} signed commands ({', '.join(texts)}):")
    print(f"  p50 {percentile(ms, 50):.1f} ms   p99 {percentile(ms, 99):.1f} ms   "
          f"mean {statistics.mean(ms):.1f} ms   max {max(ms):.1f} ms")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="ack_latency", description=__doc__.splitlines()[0])
    p.add_argument("--url", default="http://127.0.0.1:3000/slack/events")
    p.add_argument("--secret", default=os.environ.get("SLACK_SIGNING_SECRET", ""))
    p.add_argument("--count", type=int, default=200)
    p.add_argument("--text", default=None, help="one command text instead of the mix")
    p.add_argument("--self-contained", action="store_true",
                   help="start the stand-in and the bot in-process (needs Redis at REDIS_URL)")
    asyncio.run(_amain(p.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
