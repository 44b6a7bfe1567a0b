"""Inventory (`PPS_INVENTORY`, YAML): clusters and the firmware catalogue, validated."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from jobs.appliance.versions import VersionError, newer, parse_version
from jobs.config.window import Window as Window
from jobs.config.window import parse_window as parse_window

Mode = Literal["standalone", "active-passive", "active-active"]
MODES: tuple[str, ...] = ("standalone", "active-passive", "active-active")
_CLUSTER_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
# The keys each level of the inventory may use: anything else is a typo worth naming.
TOP_KEYS = frozenset({"clusters", "firmware"})
CLUSTER_KEYS = frozenset(
    {
        "mode", "vip", "nodes", "username_env", "password_env", "realm", "tls_verify",
        "channel", "approvers", "window", "manual",
    }
)
NODE_KEYS = frozenset({"name", "url"})
FIRMWARE_KEYS = frozenset({"version", "file", "sha256"})


class InventoryError(ValueError):
    """One or more mistakes in the inventory, each on its own line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Node:
    name: str
    url: str


@dataclass(frozen=True)
class Firmware:
    version: str
    file: Path
    sha256: str


@dataclass(frozen=True)
class Cluster:
    name: str
    mode: Mode
    nodes: tuple[Node, ...]
    username_env: str
    password_env: str
    realm: str = "Admin Users"
    tls_verify: bool | str = True
    vip: str | None = None
    channel: str | None = None
    approvers: tuple[str, ...] = ()
    window: Window | None = None
    manual: frozenset[str] = frozenset()

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    @property
    def node_names(self) -> list[str]:
        return [n.name for n in self.nodes]

    def credentials(self, env: Mapping[str, str] | None = None) -> tuple[str, str]:
        """(username, password) from the environment; never logged."""
        e = os.environ if env is None else env
        return e.get(self.username_env, ""), e.get(self.password_env, "")


@dataclass(frozen=True)
class Inventory:
    clusters: dict[str, Cluster]
    firmware: tuple[Firmware, ...]
    path: Path | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def cluster(self, name: str) -> Cluster | None:
        return self.clusters.get(name)

    def firmware_for(self, version: str) -> Firmware | None:
        """The catalogue entry for `version`: exact, else equal on major/minor/release/patch."""
        for f in self.firmware:
            if f.version == version:
                return f
        try:
            want = parse_version(version)
        except VersionError:
            return None
        best: Firmware | None = None  # of several builds of one release, the newest
        for f in self.firmware:
            if parse_version(f.version).key == want.key and (
                best is None or newer(f.version, best.version)
            ):
                best = f
        return best

    @property
    def newest(self) -> Firmware | None:
        best: Firmware | None = None
        for f in self.firmware:
            if best is None or newer(f.version, best.version):
                best = f
        return best


def _unknown_keys(raw: dict[Any, Any], allowed: frozenset[str], where: str) -> list[str]:
    extra = sorted(str(k) for k in raw if k not in allowed)
    if not extra:
        return []
    return [f"{where}: unknown key(s) {', '.join(extra)} (allowed: {', '.join(sorted(allowed))})"]


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a key given twice in one mapping (YAML keeps the last)."""


def _unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _value in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _unique_mapping,
)


def _manual_names() -> tuple[str, ...]:
    """The `manual:` names the procedure tables define (imported here, not at the top: the
    tables import the steps, which import this module)."""
    from jobs.procedures import manual_names

    return manual_names()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _tls(
    value: Any, base: Path, where: str, problems: list[str], check_files: bool = True
) -> bool | str:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip():
        p = Path(value)
        if not p.is_absolute():
            p = base / p
        if check_files and not p.is_file():
            problems.append(f"{where}: tls_verify CA bundle {value!r} not found")
        return str(p)
    problems.append(f"{where}: tls_verify must be true, false or a CA bundle path")
    return True


def parse_inventory(
    data: Any,
    base: Path,
    env: Mapping[str, str] | None = None,
    check_files: bool = True,
    check_env: bool = True,
) -> Inventory:
    """Validate parsed YAML; raise `InventoryError` listing every mistake found.

    `check_files` verifies package files and their sha256; `check_env` that the credential
    variables are set (a process that never talks to appliances may skip both).
    """
    e = os.environ if env is None else env
    problems: list[str] = []
    warnings: list[str] = []
    if not isinstance(data, dict):
        raise InventoryError(["inventory: expected a mapping with 'clusters' and 'firmware'"])
    problems += _unknown_keys(data, TOP_KEYS, "inventory")
    raw_clusters = data.get("clusters")
    if not isinstance(raw_clusters, dict) or not raw_clusters:
        problems.append("clusters: expected a non-empty mapping of cluster name -> cluster")
        raw_clusters = {}
    clusters: dict[str, Cluster] = {}
    seen_nodes: dict[str, str] = {}
    for cname, raw in raw_clusters.items():
        where = f"clusters.{cname}"
        if not isinstance(cname, str) or not _CLUSTER_NAME_RE.match(cname):
            problems.append(f"{where}: cluster names use letters, digits, '.', '_' and '-'")
            continue
        if not isinstance(raw, dict):
            problems.append(f"{where}: expected a mapping")
            continue
        problems += _unknown_keys(raw, CLUSTER_KEYS, where)
        mode = raw.get("mode")
        if mode is None:
            problems.append(f"{where}: mode is missing (use one of {', '.join(MODES)})")
            continue
        if mode not in MODES:
            problems.append(f"{where}: unknown mode {mode!r} (use one of {', '.join(MODES)})")
            continue
        nodes: list[Node] = []
        raw_nodes = raw.get("nodes")
        if not isinstance(raw_nodes, list) or not raw_nodes:
            problems.append(f"{where}: nodes must be a non-empty list of {{name, url}}")
            raw_nodes = []
        for i, rn in enumerate(raw_nodes):
            if not isinstance(rn, dict) or not rn.get("name") or not rn.get("url"):
                problems.append(f"{where}.nodes[{i}]: needs 'name' and 'url'")
                continue
            problems += _unknown_keys(rn, NODE_KEYS, f"{where}.nodes[{i}]")
            name, url = str(rn["name"]), str(rn["url"]).rstrip("/")
            if not url.startswith(("http://", "https://")):
                problems.append(f"{where}.nodes[{i}]: url must start with http:// or https://")
            if name in seen_nodes:
                problems.append(
                    f"{where}.nodes[{i}]: duplicate node name {name!r} (also in {seen_nodes[name]})"
                )
            seen_nodes[name] = cname
            nodes.append(Node(name=name, url=url))
        if mode == "standalone" and len(raw_nodes) != 1:
            problems.append(f"{where}: standalone needs exactly one node, got {len(raw_nodes)}")
        if mode == "active-passive" and len(raw_nodes) != 2:
            problems.append(
                f"{where}: active-passive needs exactly two nodes, got {len(raw_nodes)}"
            )
        if mode == "active-active" and len(raw_nodes) < 2:
            problems.append(f"{where}: active-active needs at least two nodes")
        vip = raw.get("vip")
        if vip is not None:
            vip = str(vip).rstrip("/")
            if not vip.startswith(("http://", "https://")):
                problems.append(f"{where}: vip must start with http:// or https://")
        for key in ("username_env", "password_env"):
            var = raw.get(key)
            if not var or not isinstance(var, str):
                problems.append(f"{where}: {key} must name an environment variable")
            elif check_env and not e.get(var):
                problems.append(f"{where}: environment variable {var} ({key}) is not set")
        tls = _tls(raw.get("tls_verify", True), base, where, problems, check_files)
        if tls is False:
            warnings.append(f"{where}: tls_verify is false; certificates are not checked")
        approvers = raw.get("approvers") or []
        if not isinstance(approvers, list) or not all(
            isinstance(a, str) and re.match(r"^[UWS][A-Z0-9]+$", a) for a in approvers
        ):
            problems.append(f"{where}: approvers must be a list of Slack ids (U…, W…, S…)")
            approvers = []
        window = None
        if raw.get("window"):
            try:
                window = parse_window(str(raw["window"]))
            except ValueError as exc:
                problems.append(f"{where}: {exc}")
        manual = raw.get("manual") or []
        allowed = _manual_names()
        if not isinstance(manual, list) or any(m not in allowed for m in manual):
            problems.append(f"{where}: manual must be a list of {', '.join(allowed)}")
            manual = []
        clusters[cname] = Cluster(
            name=cname,
            mode=mode,
            nodes=tuple(nodes),
            username_env=str(raw.get("username_env") or ""),
            password_env=str(raw.get("password_env") or ""),
            realm=str(raw.get("realm") or "Admin Users"),
            tls_verify=tls,
            vip=vip,
            channel=str(raw["channel"]) if raw.get("channel") else None,
            approvers=tuple(approvers),
            window=window,
            manual=frozenset(manual),
        )
    firmware: list[Firmware] = []
    raw_fw = data.get("firmware")
    if not isinstance(raw_fw, list) or not raw_fw:
        problems.append("firmware: expected a non-empty list of {version, file, sha256}")
        raw_fw = []
    versions: set[str] = set()
    for i, rf in enumerate(raw_fw):
        where = f"firmware[{i}]"
        if not isinstance(rf, dict) or not all(rf.get(k) for k in ("version", "file", "sha256")):
            problems.append(f"{where}: needs 'version', 'file' and 'sha256'")
            continue
        problems += _unknown_keys(rf, FIRMWARE_KEYS, where)
        version = str(rf["version"])
        try:
            parse_version(version)
        except VersionError as exc:
            problems.append(f"{where}: {exc}")
            continue
        if version in versions:
            problems.append(f"{where}: duplicate version {version}")
        versions.add(version)
        path = Path(str(rf["file"]))
        if not path.is_absolute():
            path = base / path
        digest = str(rf["sha256"]).lower()
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            problems.append(f"{where}: sha256 must be 64 hex digits")
        elif check_files:
            if not path.is_file():
                problems.append(f"{where}: package file {path} not found")
            elif sha256_file(path) != digest:
                problems.append(f"{where}: sha256 of {path} does not match the catalogue")
        firmware.append(Firmware(version=version, file=path, sha256=digest))
    if problems:
        raise InventoryError(problems)
    return Inventory(clusters=clusters, firmware=tuple(firmware), warnings=tuple(warnings))


def load_inventory(
    path: str | Path,
    env: Mapping[str, str] | None = None,
    check_files: bool = True,
    check_env: bool = True,
) -> Inventory:
    """Read and validate the inventory file; file paths are relative to its folder."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise InventoryError([f"inventory {p}: cannot read ({exc.strerror})"]) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass: safe
    except yaml.YAMLError as exc:
        raise InventoryError([f"inventory {p}: not valid YAML ({exc})"]) from None
    inv = parse_inventory(
        data, p.resolve().parent, env=env, check_files=check_files, check_env=check_env
    )
    return Inventory(
        clusters=inv.clusters, firmware=inv.firmware, path=p.resolve(), warnings=inv.warnings
    )
