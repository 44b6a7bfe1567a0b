"""The configuration tree the contract fake serves (PPS-API.md "Configuration tree").

`GET /api/v1/configuration` answers links; each `href` answers its subtree, whose objects
link on. Names are percent-encoded in the links, as PPS-API.md says of paths.
"""

from __future__ import annotations

from typing import Any

ROOT = "configuration"  # below /api/v1/
_REALMS = "/api/v1/configuration/users/user-realms/realm"

TREE: dict[str, Any] = {
    ROOT: {
        "users": {"href": "/api/v1/configuration/users"},
        "system": {"href": "/api/v1/configuration/system"},
    },
    f"{ROOT}/users": {
        "user-realms": {
            "realm": [
                {"name": "Users", "href": f"{_REALMS}/Users"},
                {"name": "Contractor Users", "href": f"{_REALMS}/Contractor%20Users"},
            ]
        }
    },
    f"{ROOT}/users/user-realms/realm/Users": {"authentication": {"primary": "Corp LDAP"}},
    f"{ROOT}/users/user-realms/realm/Contractor Users": {"authentication": {"primary": "Local"}},
    f"{ROOT}/system": {"settings": {"idle-timeout": 10}},
}


def is_configuration(method: str, sub: str) -> bool:
    """A read of the configuration tree (the root or anything below it)."""
    return method == "GET" and (sub == ROOT or sub.startswith(ROOT + "/"))
