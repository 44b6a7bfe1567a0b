"""Builders of test inputs: settings, firmware files, inventories, a fake cluster for them.

Every suite builds these here, parameterised where the suites differ (timings, clusters,
package names), so a change to `Settings` or to the inventory format is made once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from jobs.config.clock import Clock
from jobs.config.inventory import Cluster, Inventory, parse_inventory
from jobs.config.settings import Settings
from sim.pps.packages import write_package
from tests.fakes.appliance import FakeCluster

ENV = {"PPS_U": "admin", "PPS_P": "not-a-real-password"}
"""Credentials of the built inventories (`username_env: PPS_U`, `password_env: PPS_P`)."""

NODES = {
    "standalone": ["solo"],
    "active-passive": ["east-a", "east-b"],
    "active-active": ["aa-1", "aa-2", "aa-3"],
}
VERSIONS = ("9.1R17", "9.1R18", "9.1R16")
RUNNING = "9.1R17 (build 27583)"  # what the fake appliances run before the upgrade
TARGET_BUILD = "9.1R18 (build 29865)"  # what the 9.1R18 package installs

# -- settings -----------------------------------------------------------------------------
REAL_TIMINGS: Mapping[str, float] = {
    "PPS_POLL_SECONDS": 10.0,
    "PPS_SETTLE_SECONDS": 300.0,
    "PPS_REBOOT_TIMEOUT_SECONDS": 1800.0,
    "PPS_REMINDER_SECONDS": 600.0,
    "PPS_LEASE_SECONDS": 30.0,
}
"""Production timings: for a fake clock, which moves as far as a test asks."""

E2E_TIMINGS: Mapping[str, float] = {
    "PPS_POLL_SECONDS": 0.1,
    "PPS_SETTLE_SECONDS": 0.3,
    "PPS_REBOOT_TIMEOUT_SECONDS": 15.0,
    "PPS_REMINDER_SECONDS": 60.0,
    "PPS_LEASE_SECONDS": 0.6,
}
"""A whole upgrade against the simulator in seconds: 0.1 s polls, 0.3 s settle, a 0.6 s
lease (the worker stops within a blocking read of 0.3 s)."""

WORKER_TIMINGS: Mapping[str, float] = {
    "PPS_POLL_SECONDS": 0.05,
    "PPS_SETTLE_SECONDS": 0.3,
    "PPS_REBOOT_TIMEOUT_SECONDS": 30.0,
    "PPS_REMINDER_SECONDS": 60.0,
    "PPS_LEASE_SECONDS": 0.5,
}
"""Short real timings for worker processes on fast fake appliances (crash matrix, restarts)."""


def make_settings(
    tmp: Path,
    prefix: str | None = None,
    *,
    timings: Mapping[str, float] = REAL_TIMINGS,
    **overrides: Any,
) -> Settings:
    """Settings for a test, never read from a `.env`: backups under `tmp`, `timings`, the
    two-person rule on, Redis keys under `prefix` (when given); `overrides` win."""
    values: dict[str, Any] = {
        "PPS_BACKUP_DIR": str(tmp / "backups"),
        "PPS_TWO_PERSON_RULE": True,
        **timings,
    }
    if prefix is not None:
        values["PPS_REDIS_PREFIX"] = prefix
    values.update(overrides)
    return Settings(_env_file=None, **values)


# -- firmware and inventories -------------------------------------------------------------
def package_name(version: str, pattern: str = "pps-{}-package.pkg") -> str:
    """The file name of `version`'s package: `pattern` filled with a slug of the version
    (`9.1R18 (build 29865)` -> `9.1R18-build29865`)."""
    slug = version.replace(" (", "-").replace(" ", "").rstrip(")")
    return pattern.format(slug)


def write_firmware(
    tmp: Path,
    versions: Iterable[str] = VERSIONS,
    *,
    folder: str = "firmware",
    name: str = "pps-{}-package.pkg",
    catalogue_sha: Mapping[str, str] | None = None,
) -> list[dict[str, str]]:
    """A small package file per version under `tmp/folder` and its catalogue entry (the
    file's sha256 unless `catalogue_sha` promises another)."""
    fw_dir = tmp / folder
    fw_dir.mkdir(parents=True, exist_ok=True)
    firmware = []
    for v in versions:
        f = fw_dir / package_name(v, name)
        f.write_bytes(f"package {v}\n".encode() * 100)
        sha = (catalogue_sha or {}).get(v) or hashlib.sha256(f.read_bytes()).hexdigest()
        firmware.append({"version": v, "file": f"{folder}/{f.name}", "sha256": sha})
    return firmware


def sim_firmware(
    tmp: Path,
    builds: Mapping[str, int] | None = None,
    *,
    folder: str = "fw",
    name: str = "pps-{}.pkg",
) -> list[dict[str, str]]:
    """Packages the simulator can install (version -> build; by default 9.1R17 build 27583
    and 9.1R18 build 29865) under `tmp/folder`, and their catalogue entries."""
    firmware = []
    for version, build in (builds or {"9.1R17": 27583, "9.1R18": 29865}).items():
        file = f"{folder}/{package_name(version, name)}"
        sha = write_package(tmp / file, version, build)
        firmware.append({"version": version, "file": file, "sha256": sha})
    return firmware


def cluster_entry(
    mode: str, nodes: Sequence[str] | Mapping[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    """One cluster of an inventory: `nodes` by name (at `https://<name>.example.net`) or
    name -> url, `NODES[mode]` when omitted; credentials from `ENV`; `extra` wins."""
    urls = (
        dict(nodes)
        if isinstance(nodes, Mapping)
        else {n: f"https://{n}.example.net" for n in (nodes or NODES[mode])}
    )
    return {
        "mode": mode,
        "nodes": [{"name": n, "url": u} for n, u in urls.items()],
        "username_env": "PPS_U",
        "password_env": "PPS_P",
        **extra,
    }


def inventory_data(
    tmp: Path,
    clusters: Mapping[str, Mapping[str, Any]],
    firmware: list[dict[str, str]] | None = None,
    **firmware_kw: Any,
) -> dict[str, Any]:
    """An inventory as YAML-ready data; writes the firmware (`write_firmware(**firmware_kw)`)
    unless `firmware` is given."""
    fw = write_firmware(tmp, **firmware_kw) if firmware is None else firmware
    return {"clusters": {name: dict(c) for name, c in clusters.items()}, "firmware": fw}


def make_inventory(
    tmp: Path,
    clusters: Mapping[str, Mapping[str, Any]],
    firmware: list[dict[str, str]] | None = None,
    *,
    env: Mapping[str, str] = ENV,
    check_files: bool = True,
    **firmware_kw: Any,
) -> Inventory:
    """`inventory_data(...)` validated by the product's parser, relative to `tmp`."""
    data = inventory_data(tmp, clusters, firmware, **firmware_kw)
    return parse_inventory(data, tmp, env=dict(env), check_files=check_files)


def write_inventory(
    tmp: Path,
    mode: str,
    *,
    vip: bool = False,
    manual: list[str] | None = None,
    window: str | None = None,
    versions: tuple[str, ...] = VERSIONS,
    catalogue_sha: dict[str, str] | None = None,
) -> Inventory:
    """Firmware files on disk and a validated inventory with one cluster `c1` of `mode`."""
    extra: dict[str, Any] = {}
    if vip:
        extra["vip"] = "https://vpn.example.net"
    if manual:
        extra["manual"] = manual
    if window:
        extra["window"] = window
    clusters = {"c1": cluster_entry(mode, **extra)}
    return make_inventory(
        tmp, clusters, versions=versions, catalogue_sha=catalogue_sha, check_files=False
    )


def new_fake(cluster: Cluster, clock: Clock, **kw: Any) -> FakeCluster:
    """A FakeCluster shaped like `cluster`, on `RUNNING`, with the 9.1R18 package known and
    412 sessions; `kw` wins."""
    base: dict[str, Any] = {
        "build": RUNNING,
        "packages": {package_name("9.1R18"): TARGET_BUILD},
        "sessions": 412,
    }
    return FakeCluster.for_cluster(cluster, clock, **{**base, **kw})
