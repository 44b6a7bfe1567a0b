"""Configuration backups on disk: `<PPS_BACKUP_DIR>/<cluster>/<job-id>/`.

`system.cfg` and `user.cfg` (mode 0600, folder 0700) plus `manifest.json` naming the job
(id, cluster, creation time) and listing, per file, its sha256, size, the node it came
from, that node's build and the time. Every file is written whole, fsynced, renamed into
place and the folder fsynced; `job.json` (the folder's owner) comes first and the manifest
last, so a manifest whose files match means the backup is complete, and a folder always
says which job it belongs to. `verify_backup` reads everything back from disk.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
OWNER = "job.json"
FILE_NAMES: dict[str, str] = {"system": "system.cfg", "user": "user.cfg"}
TMP_SUFFIX = ".tmp"  # a write interrupted before its rename leaves `<name>.tmp`
_CHUNK = 1 << 20


@dataclass(frozen=True)
class JobRef:
    """The job a backup folder belongs to: its id is unique, its creation time doubly so."""

    id: str
    cluster: str
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "cluster": self.cluster, "created_at": self.created_at}

    @classmethod
    def from_dict(cls, d: Any) -> JobRef | None:
        """The reference in a manifest or owner file, or None when it names no job."""
        if not isinstance(d, dict):
            return None
        jid, cluster, at = d.get("id"), d.get("cluster"), d.get("created_at")
        if not isinstance(jid, str) or not isinstance(cluster, str):
            return None
        if not isinstance(at, int | float) or isinstance(at, bool):
            return None
        return cls(jid, cluster, float(at))

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.created_at))
        return f"job {self.id} of cluster {self.cluster} created {when}"


@dataclass(frozen=True)
class FileCheck:
    """One backup file read back from disk against its manifest entry."""

    file: str
    status: str  # ok | mismatch | missing | unreadable | unlisted (not in the manifest)
    want_size: int | None = None
    want_sha256: str | None = None
    size: int | None = None  # on disk
    sha256: str | None = None  # on disk

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def problem(self) -> str:
        """What is wrong, naming the file and both checksums."""
        if self.status in ("missing", "unreadable"):
            return f"{self.file} is {self.status} (manifest: sha256 {self.want_sha256})"
        if self.status == "unlisted":
            return f"{self.file} is not listed in the manifest"
        return (f"{self.file} does not match the manifest: sha256 {self.sha256} "
                f"({self.size} bytes) on disk, {self.want_sha256} ({self.want_size} bytes) "
                "in the manifest")


@dataclass(frozen=True)
class Verification:
    """A backup folder read back: who it belongs to, each file, and manifest problems."""

    job: JobRef | None
    checks: list[FileCheck]
    problem: str | None = None  # the manifest is missing, unreadable or lists no files

    @property
    def ok(self) -> bool:
        return self.problem is None and bool(self.checks) and all(c.ok for c in self.checks)

    def problems(self) -> list[str]:
        head = [self.problem] if self.problem else []
        return head + [c.problem() for c in self.checks if not c.ok]

    def entries(self) -> list[dict[str, Any]]:
        """`[{file, sha256, size}]` as the job's outputs keep them."""
        return [{"file": c.file, "sha256": c.want_sha256, "size": c.want_size}
                for c in self.checks]


def backup_dir(base: str | Path, cluster: str, job_id: str) -> Path:
    """Where one job's backup lives."""
    return Path(base) / cluster / job_id


# -- durable writes -------------------------------------------------------------------
def write_all(fd: int, data: bytes) -> None:
    """Write every byte of `data` to `fd` (`os.write` may write only part of it)."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:
            raise OSError(f"write returned {n}")
        view = view[n:]


def fsync_dir(folder: Path) -> None:
    """Make the folder's entries (a rename, a new file or folder) durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durable(path: Path, data: bytes) -> None:
    """Write `path` (mode 0600) whole: temp file, fsync, rename, fsync the folder."""
    tmp = path.with_name(path.name + TMP_SUFFIX)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)  # O_CREAT honours the umask; a reused temp file keeps its mode
    os.replace(tmp, path)
    fsync_dir(path.parent)


def make_folder(folder: Path) -> None:
    """Create `folder` (mode 0700) and any missing parents, each made durable in its parent."""
    missing: list[Path] = []
    p = folder
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made in between by someone else
            d.mkdir(mode=0o700)
        fsync_dir(d.parent)
    os.chmod(folder, 0o700)


# -- ownership ------------------------------------------------------------------------
def _read_json(path: Path) -> Any:
    return json.loads(path.read_bytes())


def folder_owner(folder: Path) -> tuple[JobRef | None, str]:
    """Who the folder belongs to, from the manifest, else the owner file; and how we know."""
    for name in (MANIFEST, OWNER):
        try:
            data = _read_json(folder / name)
        except FileNotFoundError:
            continue
        except (OSError, ValueError):
            return None, f"an unreadable {name}"
        ref = JobRef.from_dict(data.get("job") if isinstance(data, dict) else None)
        if ref is None:
            return None, f"a {name} that names no job"
        return ref, f"a {name} of {ref.describe()}"
    return None, ""


def foreign_content(folder: Path, me: JobRef) -> str | None:
    """None when `folder` is free for `me` (absent, empty, or already this very job's);
    otherwise what was found there, for an error message."""
    if not folder.exists():
        return None
    if not folder.is_dir():
        return f"{folder} already exists and is not a folder; it is neither reused nor replaced"
    names = sorted(p.name for p in folder.iterdir())
    owner, how = folder_owner(folder)
    if owner == me:
        return None
    real = [n for n in names if not n.endswith(TMP_SUFFIX)]
    if owner is None and not how and not real:
        return None  # nothing but leftovers of an interrupted write of ours: claim it
    listing = ", ".join(real) if len(real) <= 6 else ", ".join(real[:6]) + ", …"
    found = how or "no manifest and no owner file"
    return (f"{folder} already exists and holds {found} ({listing}); it is not this job's "
            f"({me.describe()}), so it is neither reused nor overwritten")


def claim(folder: Path, me: JobRef) -> None:
    """Create the folder and record `me` as its owner before any backup file is written."""
    make_folder(folder)
    owner, _ = folder_owner(folder)
    if owner != me:
        write_durable(folder / OWNER, _dumps({"job": me.to_dict()}))


# -- backups --------------------------------------------------------------------------
def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, indent=2).encode()


def write_backup(
    folder: Path, me: JobRef, exports: dict[str, bytes], node: str, build: str, at: float
) -> list[dict[str, Any]]:
    """Store the exports and, last, the manifest; return `[{file, sha256, size}]`.

    The checksums are those of the exports as received; `verify_backup` compares the disk
    with them. Raises `ValueError` for an empty export and `OSError` when the disk refuses.
    """
    for kind, data in exports.items():
        if not data:
            raise ValueError(f"{kind} configuration export is empty")
    claim(folder, me)
    files: list[dict[str, Any]] = []
    for kind, data in exports.items():
        name = FILE_NAMES[kind]
        write_durable(folder / name, data)
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
    write_durable(folder / MANIFEST, _dumps({"job": me.to_dict(), "files": files}))
    return [{"file": f["file"], "sha256": f["sha256"], "size": f["size"]} for f in files]


def _digest(path: Path) -> tuple[int, str] | str:
    """(size, sha256) of the file as read from disk, or why it cannot be read."""
    h, size = hashlib.sha256(), 0
    try:
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
                size += len(chunk)
    except (FileNotFoundError, IsADirectoryError):
        return "missing"
    except OSError:
        return "unreadable"
    return size, h.hexdigest()


def _check(folder: Path, entry: Any) -> FileCheck:
    name = str(entry.get("file")) if isinstance(entry, dict) else "?"
    want_size, want_sha = (entry.get("size"), entry.get("sha256")) if isinstance(
        entry, dict) else (None, None)
    size = want_size if isinstance(want_size, int) and not isinstance(want_size, bool) else None
    sha = want_sha if isinstance(want_sha, str) else None
    got = _digest(folder / name) if name in FILE_NAMES.values() else "missing"
    if isinstance(got, str):
        return FileCheck(name, got, size, sha)
    status = "ok" if got == (size, sha) else "mismatch"
    return FileCheck(name, status, size, sha, got[0], got[1])


def verify_backup(folder: Path) -> Verification:
    """Read the manifest and every file it lists back from disk and compare size and sha256."""
    try:
        manifest = _read_json(folder / MANIFEST)
    except FileNotFoundError:
        return Verification(None, [], f"{MANIFEST} is missing from {folder}")
    except (OSError, ValueError) as exc:
        return Verification(None, [], f"{MANIFEST} in {folder} is unreadable ({exc})")
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        return Verification(None, [], f"{MANIFEST} in {folder} lists no files")
    job = JobRef.from_dict(manifest.get("job"))
    checks = [_check(folder, e) for e in manifest["files"]]
    listed = {c.file for c in checks}
    checks += [FileCheck(n, "unlisted") for n in FILE_NAMES.values() if n not in listed]
    return Verification(job, checks)


def read_backup(folder: Path, me: JobRef) -> list[dict[str, Any]] | None:
    """The `[{file, sha256, size}]` of `me`'s complete backup whose files match, else None."""
    v = verify_backup(folder)
    return v.entries() if v.ok and v.job == me else None
