"""The simulator's firmware package convention, shared by tests and the demo.

A simulated package is any file whose first line is

    PPS-SIM-PACKAGE version=9.1R18 build=29865

followed by filler bytes. Installing it on a simulated node makes the node come back
running `9.1R18 (build 29865)`. `write_package` creates such a file and returns its
sha256, ready for an inventory's firmware catalogue.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

MAGIC = b"PPS-SIM-PACKAGE"
_HEADER_RE = re.compile(rb"^PPS-SIM-PACKAGE version=(?P<version>\S+) build=(?P<build>\d+)\r?$")


def build_string(version: str, build: int) -> str:
    """The running-build text an appliance reports, e.g. `9.1R18 (build 29865)`."""
    return f"{version} (build {build})"


def package_bytes(version: str, build: int, size: int = 4096) -> bytes:
    """The content of a package for `version`/`build`, padded to at least `size` bytes."""
    header = MAGIC + f" version={version} build={build}\n".encode()
    filler = hashlib.sha256(header).digest()
    body = (filler * (max(0, size - len(header)) // len(filler) + 1))[: max(0, size - len(header))]
    return header + body


def write_package(path: str | Path, version: str, build: int, size: int = 4096) -> str:
    """Write a simulated package to `path` (parents created); return its sha256 hex."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    data = package_bytes(version, build, size)
    p.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def read_package_header(data: bytes) -> tuple[str, int] | None:
    """(version, build) from a package's first line, or None when it is not a package."""
    first = data.split(b"\n", 1)[0]
    m = _HEADER_RE.match(first)
    if not m:
        return None
    return m["version"].decode(), int(m["build"])
