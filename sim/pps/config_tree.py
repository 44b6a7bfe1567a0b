"""The simulated configuration tree (PPS-API.md "Configuration tree"), one per cluster.

A cluster replicates its configuration, so every node answers the same tree (the cluster
section lists every node). `GET /api/v1/configuration` answers links to `administrators`,
`authentication`, `users` and `system`; each subtree links its objects (realms, roles,
sign-in policies, auth servers) by `href`, percent-encoded. Resources are kept by their
decoded path under `/api/v1/configuration` (the root is `""`).

Knob `upgrade_changes_config`: the first node that comes back on a new build migrates the
configuration (and the cluster replicates it): one setting changes (TLS 1.1 is dropped from
the allowed protocols) and one object goes (the `*/legacy/` sign-in policy).
Fault `config_huge_objects`: that many extra user roles of about 1 KiB each.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

BASE = "/api/v1/configuration"
BULK_ROLE = "bulk-role-"
LEGACY_POLICY = "3"  # the id of the `*/legacy/` sign-in policy
OLD_PROTOCOLS, NEW_PROTOCOLS = "TLSv1.1,TLSv1.2", "TLSv1.2,TLSv1.3"


def href(path: str) -> str:
    """The link to the resource at decoded `path` (each segment percent-encoded)."""
    return BASE + "/".join(quote(seg, safe="") for seg in path.split("/"))


def _named(path: str, names: list[str]) -> list[dict[str, str]]:
    return [{"name": n, "href": href(f"{path}/{n}")} for n in names]


def build_config(cluster: str, mode: str, nodes: list[str]) -> dict[str, Any]:
    """The tree of a freshly set-up cluster: resources by decoded path."""
    r: dict[str, Any] = {
        "": {k: {"href": href(f"/{k}")} for k in ("administrators", "authentication", "users",
                                                   "system")},
        "/administrators": {
            "admin-realms": {"realm": _named("/administrators/admin-realms/realm",
                                             ["Admin Users"])},
            "admin-roles": {"role": _named("/administrators/admin-roles/role",
                                           [".Administrators", ".Read-Only Administrators"])},
        },
        "/administrators/admin-realms/realm/Admin Users": {
            "name": "Admin Users",
            "authentication": {"primary": {"server": "Administrators"}},
            "role-mapping-rules": {"rule": [
                {"name": "admins", "condition": 'username is "*"', "roles": [".Administrators"],
                 "stop-processing": True}]},
            "session-limits": {"max-sessions-per-user": 2},
        },
        "/administrators/admin-roles/role/.Administrators": {
            "name": ".Administrators", "access": "read-write",
            "session-options": {"idle-timeout-minutes": 10, "max-session-minutes": 60}},
        "/administrators/admin-roles/role/.Read-Only Administrators": {
            "name": ".Read-Only Administrators", "access": "read-only",
            "session-options": {"idle-timeout-minutes": 10, "max-session-minutes": 60}},
        "/authentication": {"auth-server": _named(
            "/authentication/auth-server", ["Administrators", "Corp LDAP", "RADIUS MFA"])},
        "/authentication/auth-server/Administrators": {
            "name": "Administrators", "type": "local",
            "password-options": {"min-length": 12, "max-age-days": 90}},
        "/authentication/auth-server/Corp LDAP": {
            "name": "Corp LDAP", "type": "ldap", "server": "ldap.corp.example", "port": 636,
            "ssl": True, "admin-dn": "cn=pps,ou=svc,dc=corp,dc=example",
            "admin-password": "enc:4f2a9c0d1e", "timeout-seconds": 15},
        "/authentication/auth-server/RADIUS MFA": {
            "name": "RADIUS MFA", "type": "radius", "server": "radius.corp.example",
            "port": 1812, "shared-secret": "enc:77b1c3aa09", "timeout-seconds": 30},
        "/users": {
            "user-realms": {"realm": _named("/users/user-realms/realm", ["Users", "Contractors"])},
            "user-roles": {"role": _named("/users/user-roles/role",
                                          ["Employees", "Contractors", "Remediation"])},
            "sign-in-policies": {"user-url": [
                {"name": url, "href": href(f"/users/sign-in-policies/user-url/{i}")}
                for i, url in (("1", "*/"), ("2", "*/contractors/"),
                               (LEGACY_POLICY, "*/legacy/"))]},
        },
        "/system": {"settings": {"href": href("/system/settings")},
                    "cluster": {"href": href("/system/cluster")}},
        "/system/settings": {
            "date-time": {"ntp-servers": ["ntp1.corp.example", "ntp2.corp.example"],
                          "timezone": "Europe/Berlin"},
            "dns": {"servers": ["10.0.0.53", "10.0.1.53"], "domain": "corp.example"},
            "syslog": {"servers": [{"name": "siem", "host": "siem.corp.example", "port": 514}]},
            "security": {"ssl-options": {"allowed-protocols": OLD_PROTOCOLS,
                                         "cipher-strength": "high"},
                         "lockout": {"attempts": 5, "period-minutes": 10}},
        },
        "/system/cluster": {"name": cluster, "mode": mode, "members": [
            {"name": n, "internal-address": f"10.0.0.{11 + i}"} for i, n in enumerate(nodes)]},
    }
    for realm, server, role in (("Users", "Corp LDAP", "Employees"),
                                ("Contractors", "RADIUS MFA", "Contractors")):
        r[f"/users/user-realms/realm/{realm}"] = {
            "name": realm,
            "authentication": {"primary": {"server": server}},
            "role-mapping-rules": {"rule": [{"name": f"{role.lower()}-rule",
                                             "condition": "username is \"*\"",
                                             "roles": [role]}]},
            "host-checker": {"policies": ["Antivirus"], "enforce": realm == "Contractors"},
        }
    for role, minutes in (("Employees", 720), ("Contractors", 240), ("Remediation", 15)):
        r[f"/users/user-roles/role/{role}"] = {
            "name": role, "session-options": {"max-session-minutes": minutes,
                                              "idle-timeout-minutes": 30},
            "access-features": {"network-connect": role != "Remediation"}}
    for i, url, realms in (("1", "*/", ["Users"]), ("2", "*/contractors/", ["Contractors"]),
                           (LEGACY_POLICY, "*/legacy/", ["Users"])):
        r[f"/users/sign-in-policies/user-url/{i}"] = {
            "name": url, "sign-in-page": "Default Sign-In Page", "realms": realms,
            "enabled": True}
    return r


def migrate(config: dict[str, Any]) -> None:
    """What `upgrade_changes_config` makes a new build do to the tree (in place)."""
    config["/system/settings"]["security"]["ssl-options"]["allowed-protocols"] = NEW_PROTOCOLS
    config.pop(f"/users/sign-in-policies/user-url/{LEGACY_POLICY}", None)
    urls = config["/users"]["sign-in-policies"]["user-url"]
    legacy = href(f"/users/sign-in-policies/user-url/{LEGACY_POLICY}")
    config["/users"]["sign-in-policies"]["user-url"] = [u for u in urls if u["href"] != legacy]


def resource(config: dict[str, Any], path: str, huge: int) -> Any | None:
    """The answer for decoded `path` (None: 404), with `huge` bulk roles added."""
    path = "/" + path.strip("/") if path.strip("/") else ""
    if huge > 0 and path == "/users":
        users = dict(config["/users"])
        roles = list(users["user-roles"]["role"])
        roles += _named("/users/user-roles/role", [f"{BULK_ROLE}{i:05d}" for i in range(huge)])
        return {**users, "user-roles": {"role": roles}}
    prefix = "/users/user-roles/role/" + BULK_ROLE
    number = path[len(prefix):] if path.startswith(prefix) else ""
    if number.isdigit() and int(number) < huge:
        name = BULK_ROLE + number
        return {"name": name, "description": f"generated role {name} " + "x" * 900,
                "session-options": {"max-session-minutes": 60}}
    return config.get(path)
