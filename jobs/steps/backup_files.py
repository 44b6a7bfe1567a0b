"""Configuration backups on disk: `<PPS_BACKUP_DIR>/<cluster>/<job-id>/`.

`system.cfg` and `user.cfg` (mode 0600, folder 0700) plus `manifest.json` listing, per file,
its sha256, size, the node it came from, that node's build and the time. The manifest is
written last, so a complete manifest whose files match means the backup is done.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
FILE_NAMES: dict[str, str] = {"system": "system.cfg", "user": "user.cfg"}


def backup_dir(base: str | Path, cluster: str, job_id: str) -> Path:
    """Where one job's backup lives."""
    return Path(base) / cluster / job_id


def _write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` with mode 0600, atomically (temp file + rename)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)  # O_CREAT honours the umask; a reused temp file keeps its mode
    os.replace(tmp, path)


def write_backup(
    folder: Path, exports: dict[str, bytes], node: str, build: str, at: float
) -> list[dict[str, Any]]:
    """Store the exports and the manifest; return `[{file, sha256, size}]`.

    Raises `ValueError` for an empty export and `OSError` when the disk refuses.
    """
    for kind, data in exports.items():
        if not data:
            raise ValueError(f"{kind} configuration export is empty")
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    files: list[dict[str, Any]] = []
    for kind, data in exports.items():
        name = FILE_NAMES[kind]
        _write_private(folder / name, data)
        files.append(
            {
                "file": name,
                "kind": kind,
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
                "node": node,
                "build": build,
                "time": at,
            }
        )
    manifest = {"files": files}
    _write_private(folder / MANIFEST, json.dumps(manifest, indent=2).encode())
    return [{"file": f["file"], "sha256": f["sha256"], "size": f["size"]} for f in files]


def read_backup(folder: Path) -> list[dict[str, Any]] | None:
    """The `[{file, sha256, size}]` of a complete backup whose files match, else None."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        files = manifest["files"]
        names = {f["file"] for f in files}
        if names != set(FILE_NAMES.values()):
            return None
        out: list[dict[str, Any]] = []
        for f in files:
            data = (folder / f["file"]).read_bytes()
            if not data or len(data) != f["size"]:
                return None
            if hashlib.sha256(data).hexdigest() != f["sha256"]:
                return None
            out.append({"file": f["file"], "sha256": f["sha256"], "size": f["size"]})
        return out
    except (OSError, ValueError, KeyError, TypeError):
        return None
