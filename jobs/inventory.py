"""Inventory (`PPS_INVENTORY`, YAML): clusters and the firmware catalogue, validated."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from jobs.versions import VersionError, compare, parse_version

Mode = Literal["standalone", "active-passive", "active-active"]
MODES: tuple[str, ...] = ("standalone", "active-passive", "active-active")
MANUAL_NAMES: tuple[str, ...] = ("logins", "install")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WINDOW_RE = re.compile(
    r"^\s*(?:(?P<days>[A-Za-z]{3}(?:\s*[-,]\s*[A-Za-z]{3})*)\s+)?"
    r"(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})(?:\s+(?P<tz>\S+))?\s*$"
)
_CLUSTER_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


class InventoryError(ValueError):
    """One or more mistakes in the inventory, each on its own line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Window:
    """A weekly maintenance window, e.g. `Sat 01:00-05:00 Europe/Berlin`."""

    text: str
    days: frozenset[int]  # 0 = Monday
    start: time
    end: time
    tz: ZoneInfo

    def contains(self, epoch: float) -> bool:
        """Is `epoch` inside the window (windows may cross midnight)?"""
        t = datetime.fromtimestamp(epoch, self.tz)
        now = t.time()
        if self.start <= self.end:
            return t.weekday() in self.days and self.start <= now < self.end
        if now >= self.start:
            return t.weekday() in self.days
        return (t.weekday() - 1) % 7 in self.days and now < self.end


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
        """The catalogue entry for `version` (exact, or equal on major/minor/release/patch)."""
        for f in self.firmware:
            if f.version == version:
                return f
        try:
            want = parse_version(version)
        except VersionError:
            return None
        for f in self.firmware:
            if parse_version(f.version).key == want.key:
                return f
        return None

    @property
    def newest(self) -> Firmware | None:
        best: Firmware | None = None
        for f in self.firmware:
            if best is None or compare(f.version, best.version) > 0:
                best = f
        return best


def parse_window(text: str) -> Window:
    """Parse `"[Days ]HH:MM-HH:MM[ Zone]"`; days like `Sat`, `Mon-Fri`, `Sat,Sun`."""
    m = _WINDOW_RE.match(text)
    if not m:
        raise ValueError(f"window {text!r}: expected like 'Sat 01:00-05:00 Europe/Berlin'")
    days: set[int] = set()
    if m["days"]:
        for part in re.split(r"\s*,\s*", m["days"].lower()):
            ends = [p.strip() for p in part.split("-")]
            if any(e not in _DAYS for e in ends):
                raise ValueError(f"window {text!r}: unknown day in {part!r}")
            a, b = _DAYS.index(ends[0]), _DAYS.index(ends[-1])
            i = a
            while True:
                days.add(i)
                if i == b:
                    break
                i = (i + 1) % 7
    else:
        days = set(range(7))
    try:
        start = time.fromisoformat(m["start"].zfill(5))
        end = time.fromisoformat(m["end"].zfill(5))
    except ValueError as exc:
        raise ValueError(f"window {text!r}: bad time ({exc})") from None
    try:
        tz = ZoneInfo(m["tz"] or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"window {text!r}: unknown time zone {m['tz']!r}") from None
    return Window(text=text, days=frozenset(days), start=start, end=end, tz=tz)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _tls(value: Any, base: Path, where: str, problems: list[str]) -> bool | str:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip():
        p = Path(value)
        if not p.is_absolute():
            p = base / p
        if not p.is_file():
            problems.append(f"{where}: tls_verify CA bundle {value!r} not found")
        return str(p)
    problems.append(f"{where}: tls_verify must be true, false or a CA bundle path")
    return True


def parse_inventory(
    data: Any,
    base: Path,
    env: Mapping[str, str] | None = None,
    check_files: bool = True,
) -> Inventory:
    """Validate parsed YAML; raise `InventoryError` listing every mistake found."""
    e = os.environ if env is None else env
    problems: list[str] = []
    warnings: list[str] = []
    if not isinstance(data, dict):
        raise InventoryError(["inventory: expected a mapping with 'clusters' and 'firmware'"])
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
        mode = raw.get("mode")
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
            problems.append(f"{where}: active-passive needs exactly two nodes, got {len(raw_nodes)}")
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
            elif not e.get(var):
                problems.append(f"{where}: environment variable {var} ({key}) is not set")
        tls = _tls(raw.get("tls_verify", True), base, where, problems)
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
        if not isinstance(manual, list) or any(m not in MANUAL_NAMES for m in manual):
            problems.append(f"{where}: manual must be a list of {', '.join(MANUAL_NAMES)}")
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
    path: str | Path, env: Mapping[str, str] | None = None, check_files: bool = True
) -> Inventory:
    """Read and validate the inventory file; file paths are relative to its folder."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise InventoryError([f"inventory {p}: cannot read ({exc.strerror})"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InventoryError([f"inventory {p}: not valid YAML ({exc})"]) from None
    inv = parse_inventory(data, p.resolve().parent, env=env, check_files=check_files)
    return Inventory(
        clusters=inv.clusters, firmware=inv.firmware, path=p.resolve(), warnings=inv.warnings
    )
