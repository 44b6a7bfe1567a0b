"""The configuration tree of a `FakeCluster`: resources by `href`, read by the real walk.

Tests change `FakeCluster.config` (a dict `href -> JSON`) to make a drift, and use
`fail_next("config_tree", ...)` or `set_down` to make the tree unreadable.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from jobs.appliance.config_tree import ROOT_HREF, ConfigTree, TreeLimits, walk_tree
from jobs.appliance.protocol import Rejected
from jobs.config.clock import Clock

ROLES = f"{ROOT_HREF}/users/user-roles/role"


def default_config(nodes: list[str]) -> dict[str, Any]:
    """A small replicated tree: system settings, the cluster's nodes, two user roles."""
    return {
        ROOT_HREF: {
            "system": {"href": f"{ROOT_HREF}/system"},
            "users": {"href": f"{ROOT_HREF}/users"},
        },
        f"{ROOT_HREF}/system": {
            "settings": {"idle-timeout": 10, "allowed-protocols": "TLSv1.1,TLSv1.2"},
            "cluster": {"nodes": [{"name": n} for n in nodes]},
        },
        f"{ROOT_HREF}/users": {
            "user-roles": {
                "role": [
                    {"name": "Employees", "href": f"{ROLES}/Employees"},
                    {"name": "Guests", "href": f"{ROLES}/Guests"},
                ]
            }
        },
        f"{ROLES}/Employees": {"name": "Employees", "session-timeout": 60},
        f"{ROLES}/Guests": {"name": "Guests", "session-timeout": 15, "radius-secret": "s3"},
    }


async def read_tree(
    config: dict[str, Any], node: str, limits: TreeLimits, clock: Clock
) -> ConfigTree:
    """Walk `config` as the client walks an appliance (sizes are the JSON's bytes)."""

    async def fetch(href: str) -> tuple[Any, int]:
        if href not in config:
            raise Rejected(node, 404, "no such configuration object")
        data = copy.deepcopy(config[href])
        return data, len(json.dumps(data).encode())

    return await walk_tree(fetch, limits, clock, node)
