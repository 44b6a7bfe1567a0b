"""The worker's HTTP side on PPS_WORKER_METRICS_PORT: `GET /metrics` and `GET /healthz`.

`/healthz` answers 200 while Redis answers (503 otherwise), with the worker's name and how
many items it handled; `/metrics` is the Prometheus exposition, with `pps_logins_disabled`
read from the active jobs first. The server runs inside the worker's event loop (uvicorn
without its signal handling: the worker owns SIGTERM), and a port already taken is
logged, never fatal: the upgrades matter more than the metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
import structlog
import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from jobs.config.settings import Settings
from jobs.rules.model import Job
from jobs.worker.metrics import LOGINS_DISABLED, EventTally, clusters_with_logins_off

CHECK_TIMEOUT_SECONDS = 2.0

log = structlog.get_logger("jobs.worker.metrics_server")


def metrics_app(
    ping: Callable[[], Awaitable[Any]],
    active_jobs: Callable[[], Awaitable[list[Job]]],
    status: Callable[[], dict[str, Any]],
) -> Starlette:
    """`/healthz` (`ping` must answer) and `/metrics` (`active_jobs` feed the gauge)."""

    async def healthz(request: Request) -> JSONResponse:
        try:
            await asyncio.wait_for(ping(), CHECK_TIMEOUT_SECONDS)
        except Exception as exc:
            return JSONResponse({"ok": False, "redis": f"unavailable ({type(exc).__name__})",
                                 **status()}, status_code=503)
        return JSONResponse({"ok": True, "redis": "ok", **status()})

    async def metrics(request: Request) -> Response:
        try:
            jobs = await asyncio.wait_for(active_jobs(), CHECK_TIMEOUT_SECONDS)
            LOGINS_DISABLED.set(clusters_with_logins_off(jobs))
        except Exception as exc:  # Redis away: serve the rest, the gauge keeps its last value
            log.debug("logins gauge not refreshed", error=type(exc).__name__)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route("/healthz", healthz, methods=["GET"]),
                             Route("/metrics", metrics, methods=["GET"])])


class MetricsServer:
    """Serves an ASGI app on host:port in the running loop until `stop()`."""

    def __init__(self, app: Starlette, host: str, port: int) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None

    async def start(self) -> bool:
        """Bind and serve; False (logged) when the port cannot be bound."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
            # Listen here, inside the try: two workers started together may both bind the
            # port (SO_REUSEADDR) and the second then fails in listen(), which uvicorn
            # answered by exiting the whole worker.
            sock.listen(128)
        except OSError as exc:
            sock.close()
            log.error("worker metrics port unavailable; no /metrics", port=self.port,
                      error=str(exc))
            return False
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(self.app, lifespan="off", log_config=None, access_log=False)
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        await server.startup(sockets=[sock])
        self._server = server
        log.info("worker metrics served", port=self.port)
        return True

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.shutdown(), 5)


async def serve_worker_metrics(
    tally: EventTally, redis: aioredis.Redis, settings: Settings, name: str,
    host: str | None = None,
) -> MetricsServer | None:
    """Start the worker's `/metrics` and `/healthz` on PPS_WORKER_METRICS_PORT (0: none; on
    `host`, default $HOST or all addresses); None when not served."""
    if not settings.PPS_WORKER_METRICS_PORT:
        return None
    app = metrics_app(redis.ping, tally.active_jobs, lambda: {"worker": name})
    server = MetricsServer(app, host or os.environ.get("HOST", "0.0.0.0"),
                           settings.PPS_WORKER_METRICS_PORT)
    return server if await server.start() else None
