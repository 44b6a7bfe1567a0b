"""The simulator's control API, on its own port (nodes may be down, the control never is).

    GET    /_sim/clusters                          state of every cluster
    GET    /_sim/clusters/{c}                      one cluster: nodes, phases, builds, VIP, knobs
    PATCH  /_sim/clusters/{c}                      {"knobs": {...}, "faults": {...},
                                                    "login_permission": bool, "sessions": int,
                                                    "preferred_active": "node"}
    GET    /_sim/clusters/{c}/log                  {"entries": [...], "counts": {node: {call: n}}}
                                                   (each entry: received_at, at = answered)
    DELETE /_sim/clusters/{c}/log                  clear the write log
    POST   /_sim/clusters/{c}/expire-keys          every api key of the cluster stops working
    PATCH  /_sim/clusters/{c}/nodes/{n}            {"build", "rollback_build", "enabled"}
    POST   /_sim/clusters/{c}/nodes/{n}/reboot     reboot now (same build)
    POST   /_sim/clusters/{c}/nodes/{n}/power      {"on": false} closes the port, {"on": true}
                                                   boots it again
    POST   /_sim/clusters/{c}/nodes/{n}/console-install  {"version": "9.1R18", "build": 29865}
                                                   an operator's "Install Now" in the console
    POST   /_sim/clusters/{c}/nodes/{n}/console-rollback  an operator's "Rollback" in the console

Errors answer `{"error": "..."}` with 400 (bad request) or 404 (unknown cluster or node).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sim.pps.state import SimCluster


class Controls(Protocol):
    """What the control API needs from the simulator."""

    clusters: dict[str, SimCluster]

    async def configure(self, cluster: str, changes: dict[str, Any]) -> None: ...

    async def set_node(self, cluster: str, node: str, changes: dict[str, Any]) -> None: ...

    async def reboot(self, cluster: str, node: str) -> None: ...

    async def power(self, cluster: str, node: str, on: bool) -> None: ...

    async def console_install(self, cluster: str, node: str, version: str, build: int) -> None: ...

    async def console_rollback(self, cluster: str, node: str) -> None: ...


Endpoint = Callable[[Request], Awaitable[Response]]


def control_app(sim: Controls) -> Starlette:
    """The control API over `sim`."""

    def guarded(fn: Callable[[Request], Awaitable[Any]]) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            name = request.path_params.get("cluster")
            if name is not None and name not in sim.clusters:
                return JSONResponse({"error": f"unknown cluster {name!r}"}, status_code=404)
            try:
                result = await fn(request)
            except KeyError as exc:
                return JSONResponse({"error": f"unknown node {exc.args[0]!r}"}, status_code=404)
            except (ValueError, TypeError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            if isinstance(result, Response):
                return result
            return JSONResponse(result)

        return endpoint

    async def body(request: Request) -> dict[str, Any]:
        try:
            data = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ValueError("body must be a JSON object") from None
        if not isinstance(data, dict):
            raise ValueError("body must be a JSON object")
        return data

    def cluster_of(request: Request) -> SimCluster:
        return sim.clusters[request.path_params["cluster"]]

    async def list_clusters(request: Request) -> Any:
        return {name: c.state_dict() for name, c in sim.clusters.items()}

    async def get_cluster(request: Request) -> Any:
        return cluster_of(request).state_dict()

    async def patch_cluster(request: Request) -> Any:
        await sim.configure(request.path_params["cluster"], await body(request))
        return cluster_of(request).state_dict()

    async def get_log(request: Request) -> Any:
        c = cluster_of(request)
        return {"entries": [e.as_dict() for e in c.log], "counts": c.write_counts()}

    async def clear_log(request: Request) -> Any:
        cluster_of(request).log.clear()
        return {"entries": []}

    async def expire_keys(request: Request) -> Any:
        cluster_of(request).expire_keys()
        return {"expired": True}

    async def patch_node(request: Request) -> Any:
        p = request.path_params
        await sim.set_node(p["cluster"], p["node"], await body(request))
        return cluster_of(request).state_dict()

    async def reboot_node(request: Request) -> Any:
        p = request.path_params
        await sim.reboot(p["cluster"], p["node"])
        return cluster_of(request).state_dict()

    async def power_node(request: Request) -> Any:
        p = request.path_params
        on = (await body(request)).get("on")
        if not isinstance(on, bool):
            raise ValueError("'on' must be true or false")
        await sim.power(p["cluster"], p["node"], on)
        return cluster_of(request).state_dict()

    async def console_install(request: Request) -> Any:
        p, b = request.path_params, await body(request)
        if not isinstance(b.get("version"), str) or not isinstance(b.get("build"), int):
            raise ValueError("needs 'version' (text) and 'build' (number)")
        await sim.console_install(p["cluster"], p["node"], b["version"], b["build"])
        return cluster_of(request).state_dict()

    async def console_rollback(request: Request) -> Any:
        p = request.path_params
        await sim.console_rollback(p["cluster"], p["node"])
        return cluster_of(request).state_dict()

    base = "/_sim/clusters"
    return Starlette(
        routes=[
            Route(base, guarded(list_clusters)),
            Route(base + "/{cluster}", guarded(get_cluster)),
            Route(base + "/{cluster}", guarded(patch_cluster), methods=["PATCH"]),
            Route(base + "/{cluster}/log", guarded(get_log)),
            Route(base + "/{cluster}/log", guarded(clear_log), methods=["DELETE"]),
            Route(base + "/{cluster}/expire-keys", guarded(expire_keys), methods=["POST"]),
            Route(base + "/{cluster}/nodes/{node}", guarded(patch_node), methods=["PATCH"]),
            Route(base + "/{cluster}/nodes/{node}/reboot", guarded(reboot_node), methods=["POST"]),
            Route(base + "/{cluster}/nodes/{node}/power", guarded(power_node), methods=["POST"]),
            Route(
                base + "/{cluster}/nodes/{node}/console-install",
                guarded(console_install),
                methods=["POST"],
            ),
            Route(
                base + "/{cluster}/nodes/{node}/console-rollback",
                guarded(console_rollback),
                methods=["POST"],
            ),
        ]
    )
