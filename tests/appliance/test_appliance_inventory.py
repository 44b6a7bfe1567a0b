"""Inventory loading and validation: one clear message per mistake (issue 3, item 3)."""

from __future__ import annotations

import copy
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from jobs.config.inventory import InventoryError, load_inventory, parse_inventory, parse_window
from sim.pps.packages import write_package
from tests.fakes import ROOT

ENV = {"EAST_U": "admin", "EAST_P": "pw", "SOLO_U": "admin", "SOLO_P": "pw"}


@pytest.fixture
def base(tmp_path: Path) -> dict[str, Any]:
    """A valid inventory (files in tmp_path) to break one way at a time."""
    sha18 = write_package(tmp_path / "fw" / "pps-9.1R18.pkg", "9.1R18", 29865)
    sha17 = write_package(tmp_path / "fw" / "pps-9.1R17.pkg", "9.1R17", 27583)
    (tmp_path / "ca.pem").write_text("not checked here\n")
    return {
        "clusters": {
            "cluster-east": {
                "mode": "active-passive",
                "vip": "https://vpn-east.example.net/",
                "nodes": [
                    {"name": "east-a", "url": "https://10.20.0.11"},
                    {"name": "east-b", "url": "http://10.20.0.12:8080/"},
                ],
                "username_env": "EAST_U",
                "password_env": "EAST_P",
                "tls_verify": "ca.pem",
                "channel": "C0123ABCD",
                "approvers": ["U0123ABCD", "S0456EFGH"],
                "window": "Sat 01:00-05:00 Europe/Berlin",
                "manual": ["install"],
            },
            "solo": {
                "mode": "standalone",
                "nodes": [{"name": "solo-1", "url": "https://10.9.0.1"}],
                "username_env": "SOLO_U",
                "password_env": "SOLO_P",
                "tls_verify": False,
            },
        },
        "firmware": [
            {"version": "9.1R18", "file": "fw/pps-9.1R18.pkg", "sha256": sha18},
            {
                "version": "9.1R17",
                "file": str(tmp_path / "fw" / "pps-9.1R17.pkg"),
                "sha256": sha17.upper(),
            },
        ],
    }


def test_valid_inventory(base: dict[str, Any], tmp_path: Path) -> None:
    inv = parse_inventory(base, tmp_path, env=ENV)
    east = inv.clusters["cluster-east"]
    assert east.vip == "https://vpn-east.example.net"
    assert [n.url for n in east.nodes] == ["https://10.20.0.11", "http://10.20.0.12:8080"]
    assert east.tls_verify == str(tmp_path / "ca.pem")
    assert east.manual == frozenset({"install"}) and east.realm == "Admin Users"
    assert east.credentials(ENV) == ("admin", "pw")
    assert inv.clusters["solo"].tls_verify is False
    assert inv.warnings == (
        "clusters.cluster-east: east-b use http://: the admin password crosses the network in "
        "clear text; use https://",
        "clusters.solo: tls_verify is false; certificates are not checked",
    )
    assert inv.newest is not None and inv.newest.version == "9.1R18"
    fw = inv.firmware_for("9.1R17 (build 27583)")
    assert fw is not None and fw.file == tmp_path / "fw" / "pps-9.1R17.pkg"
    assert inv.firmware_for("9.1R16") is None


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    keys = path.split(".")
    cur: Any = data
    for k in keys[:-1]:
        cur = cur[int(k)] if isinstance(cur, list) else cur[k]
    last = keys[-1]
    if value is _DELETE:
        del cur[last]
    elif isinstance(cur, list):
        cur[int(last)] = value
    else:
        cur[last] = value


_DELETE = object()
EAST = "clusters.cluster-east"


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (f"{EAST}.mode", "cluster", "clusters.cluster-east: unknown mode 'cluster' (use one of"),
        (f"{EAST}.mode", _DELETE, "clusters.cluster-east: mode is missing"),
        (
            f"{EAST}.nodes",
            [{"name": "east-a", "url": "https://a"}],
            "clusters.cluster-east: active-passive needs exactly two nodes, got 1",
        ),
        (
            f"{EAST}.nodes",
            [{"name": f"e{i}", "url": "https://a"} for i in range(3)],
            "active-passive needs exactly two nodes, got 3",
        ),
        (
            "clusters.solo.nodes",
            [{"name": "s1", "url": "https://a"}, {"name": "s2", "url": "https://b"}],
            "clusters.solo: standalone needs exactly one node, got 2",
        ),
        (
            f"{EAST}.nodes.1.name",
            "east-a",
            "clusters.cluster-east.nodes[1]: duplicate node name 'east-a' (also in cluster-east)",
        ),
        (
            "clusters.solo.nodes.0.name",
            "east-b",
            "duplicate node name 'east-b' (also in cluster-east)",
        ),
        (f"{EAST}.nodes.0.url", "10.20.0.11", "nodes[0]: url must start with http:// or https://"),
        (f"{EAST}.nodes.0", {"name": "east-a"}, "nodes[0]: needs 'name' and 'url'"),
        (
            f"{EAST}.password_env",
            "EAST_MISSING",
            "clusters.cluster-east: environment variable EAST_MISSING (password_env) is not set",
        ),
        (f"{EAST}.username_env", _DELETE, "username_env must name an environment variable"),
        ("firmware.0.file", "fw/missing.pkg", "firmware[0]: package file"),
        ("firmware.0.sha256", "ab" * 32, "firmware[0]: sha256 of"),
        ("firmware.0.sha256", "xyz", "firmware[0]: sha256 must be 64 hex digits"),
        ("firmware.0.version", "9.1", "firmware[0]: not a PPS version: '9.1'"),
        ("firmware.1.version", "9.1R18", "firmware[1]: duplicate version 9.1R18"),
        ("firmware.0", {"version": "9.1R18"}, "firmware[0]: needs 'version', 'file' and 'sha256'"),
        (f"{EAST}.window", "Sat 1am-5am", "window 'Sat 1am-5am': expected like"),
        (f"{EAST}.window", "Sam 01:00-05:00", "unknown day in 'sam'"),
        (f"{EAST}.window", "Sat 01:00-25:00", "bad time"),
        (f"{EAST}.window", "Sat 01:00-05:00 Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
        (f"{EAST}.window", "Sat 03:00-03:00", "start and end are the same time"),
        (f"{EAST}.tls_verify", "nope.pem", "tls_verify CA bundle 'nope.pem' not found"),
        (f"{EAST}.tls_verify", 3, "tls_verify must be true, false or a CA bundle path"),
        (f"{EAST}.vip", "vpn-east", "vip must start with http:// or https://"),
        (f"{EAST}.approvers", ["alice"], "approvers must be a list of Slack ids"),
        (f"{EAST}.manual", ["reboot"], "manual must be a list of logins, install"),
        (f"{EAST}.tls_verfy", True, "clusters.cluster-east: unknown key(s) tls_verfy"),
        (f"{EAST}.nodes.0.port", 443, "clusters.cluster-east.nodes[0]: unknown key(s) port"),
        ("firmware.0.md5", "x", "firmware[0]: unknown key(s) md5"),
        ("firmwares", [], "inventory: unknown key(s) firmwares"),
        ("clusters", {}, "clusters: expected a non-empty mapping"),
        ("firmware", [], "firmware: expected a non-empty list"),
        ("clusters.bad name!", {"mode": "standalone"}, "cluster names use letters"),
    ],
)
def test_each_mistake_has_a_clear_message(
    base: dict[str, Any], tmp_path: Path, path: str, value: Any, message: str
) -> None:
    data = copy.deepcopy(base)
    _set(data, path, value)
    with pytest.raises(InventoryError) as err:
        parse_inventory(data, tmp_path, env=ENV)
    assert any(message in p for p in err.value.problems), err.value.problems


def test_every_mistake_is_listed_at_once(base: dict[str, Any], tmp_path: Path) -> None:
    data = copy.deepcopy(base)
    data["clusters"]["cluster-east"]["mode"] = "weird"
    data["clusters"]["solo"]["password_env"] = "NOPE"
    data["firmware"][0]["sha256"] = "00" * 32
    with pytest.raises(InventoryError) as err:
        parse_inventory(data, tmp_path, env=ENV)
    assert len(err.value.problems) == 3
    assert str(err.value).count("\n") == 2


def test_checks_can_be_skipped_where_appliances_are_not_used(
    base: dict[str, Any], tmp_path: Path
) -> None:
    data = copy.deepcopy(base)
    data["firmware"][0]["file"] = "fw/missing.pkg"
    inv = parse_inventory(data, tmp_path, env={}, check_files=False, check_env=False)
    assert set(inv.clusters) == {"cluster-east", "solo"}


def test_secret_values_never_in_messages(base: dict[str, Any], tmp_path: Path) -> None:
    data = copy.deepcopy(base)
    data["clusters"]["cluster-east"]["mode"] = "weird"
    env = {**ENV, "EAST_P": "s3cr3t-value"}
    with pytest.raises(InventoryError) as err:
        parse_inventory(data, tmp_path, env=env)
    assert "s3cr3t-value" not in str(err.value)


def test_load_from_file_resolves_paths_and_refuses_duplicate_keys(
    base: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(base))
    inv = load_inventory(path, env=ENV)
    assert inv.path == path.resolve()
    assert inv.firmware[0].file == tmp_path / "fw" / "pps-9.1R18.pkg"
    text = yaml.safe_dump(base) + "\n"
    dup = text.replace("clusters:\n", "clusters:\n  solo: {mode: standalone}\n", 1)
    path.write_text(dup)
    with pytest.raises(InventoryError, match="duplicate key 'solo'"):
        load_inventory(path, env=ENV)
    path.write_text("clusters: [unclosed\n")
    with pytest.raises(InventoryError, match="not valid YAML"):
        load_inventory(path, env=ENV)
    with pytest.raises(InventoryError, match="cannot read"):
        load_inventory(tmp_path / "nope.yml", env=ENV)


def test_example_inventory_is_valid_apart_from_its_files() -> None:
    env = {f"PPS_{c}_{w}": "x" for c in ("EAST", "WEST", "LAB") for w in ("USERNAME", "PASSWORD")}
    inv = load_inventory(ROOT / "inventory.example.yml", env=env, check_files=False)
    assert set(inv.clusters) == {"cluster-east", "cluster-west", "lab"}
    assert inv.clusters["cluster-west"].manual == frozenset({"install"})
    assert inv.clusters["cluster-east"].window is not None
    with pytest.raises(InventoryError, match="package file"):
        load_inventory(ROOT / "inventory.example.yml", env=env)


@pytest.mark.parametrize(
    ("window", "when", "inside"),
    [
        ("Sat 01:00-05:00 Europe/Berlin", "2026-11-28 01:00", True),
        ("Sat 01:00-05:00 Europe/Berlin", "2026-11-28 05:00", False),
        ("Sat 01:00-05:00 Europe/Berlin", "2026-11-27 03:00", False),
        ("Fri 22:00-02:00 UTC", "2026-11-28 01:30", True),  # Saturday early, Friday's window
        ("Fri 22:00-02:00 UTC", "2026-11-27 21:59", False),
        ("Mon-Fri 09:00-17:00", "2026-11-25 12:00", True),
        ("Sat,Sun 00:00-23:59", "2026-11-25 12:00", False),
        ("02:00-03:00 America/New_York", "2026-11-25 02:30", True),
    ],
)
def test_window_contains(window: str, when: str, inside: bool) -> None:
    w = parse_window(window)
    epoch = datetime.fromisoformat(when).replace(tzinfo=w.tz).timestamp()
    assert w.contains(epoch) is inside
    assert w.tz == ZoneInfo(window.split()[-1] if "/" in window or "UTC" in window else "UTC")
