"""Backups you can trust: written whole, synced in order, read back before the gate, and a
backup folder used only by the job that made it.

The disk misbehaves through patched `os` calls (a short `os.write`, a file changed or lost
after its rename, a crash at the folder's fsync); everything else is the real step code.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from jobs.rules.model import State, Step
from jobs.steps.backup_files import backup_dir
from jobs.steps.base import Advance, Fail
from tests.fakes.harness import Harness

MakeHarness = Callable[..., Harness]
NAMES = ("system.cfg", "user.cfg", "manifest.json")


class Crash(BaseException):
    """The process dies here (nothing after this point runs)."""


async def at_backup(make_harness: MakeHarness, **kw: Any) -> Harness:
    h = make_harness("standalone", **kw)
    h.apply(await h.run(Step.PREFLIGHT))
    assert h.job.step == Step.BACKUP
    return h


def folder(h: Harness) -> Path:
    return backup_dir(h.settings.PPS_BACKUP_DIR, "c1", h.job.id)


def manifest(h: Harness) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder(h) / "manifest.json").read_bytes())
    return data


def on_disk(path: Path) -> tuple[int, str]:
    data = path.read_bytes()
    return len(data), hashlib.sha256(data).hexdigest()


def assert_disk_matches_manifest(h: Harness) -> None:
    for f in manifest(h)["files"]:
        assert on_disk(folder(h) / f["file"]) == (f["size"], f["sha256"]), f["file"]


@pytest.fixture
def after_rename(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Callable[[Path], None]]]:
    """`hooks[name] = fn`: call `fn(path)` right after `name` is renamed into place."""
    hooks: dict[str, Callable[[Path], None]] = {}
    real = os.replace

    def replace(src: Any, dst: Any, **kw: Any) -> None:
        real(src, dst, **kw)
        hook = hooks.get(Path(dst).name)
        if hook:
            hook(Path(dst))

    monkeypatch.setattr(os, "replace", replace)
    yield hooks


# -- written whole ----------------------------------------------------------------------
async def test_short_writes_still_store_every_byte(
    make_harness: MakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = await at_backup(make_harness)
    base = h.settings.PPS_BACKUP_DIR  # absolute in the test settings
    real_open, real_write = os.open, os.write
    ours: set[int] = set()
    short: list[int] = []

    def open_(path: Any, flags: int, mode: int = 0o777, **kw: Any) -> int:
        fd = real_open(path, flags, mode, **kw)
        if flags & os.O_WRONLY and os.path.abspath(path).startswith(base):
            ours.add(fd)
        return fd

    def write(fd: int, data: Any) -> int:
        if fd in ours and len(data) > 7:  # the kernel may accept only part of a write
            short.append(fd)
            return real_write(fd, bytes(data[:7]))
        return real_write(fd, data)

    monkeypatch.setattr(os, "open", open_)
    monkeypatch.setattr(os, "write", write)
    result = await h.run()
    monkeypatch.undo()
    assert isinstance(result, Advance), result
    assert short, "the writes were not shortened"
    assert_disk_matches_manifest(h)
    sizes = {f["file"]: f["size"] for f in manifest(h)["files"]}
    assert sizes["system.cfg"] > 7 and sizes["user.cfg"] > 7


async def test_each_file_is_synced_renamed_and_its_folder_synced_manifest_last(
    make_harness: MakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = await at_backup(make_harness)
    ops: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        ops.append(("fsync", "dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"))
        real_fsync(fd)

    def replace(src: Any, dst: Any, **kw: Any) -> None:
        real_replace(src, dst, **kw)
        ops.append(("replace", Path(dst).name))

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    assert isinstance(await h.run(), Advance)
    monkeypatch.undo()
    renamed = [name for op, name in ops if op == "replace"]
    assert renamed[-1] == "manifest.json"
    assert {"system.cfg", "user.cfg"} <= set(renamed[:-1])
    for name in NAMES:
        i = ops.index(("replace", name))
        assert ops[i - 1] == ("fsync", "file"), (name, ops)  # the data is on disk first
        assert ops[i + 1] == ("fsync", "dir"), (name, ops)  # then the rename is


async def test_crash_between_rename_and_folder_fsync_is_redone_on_rerun(
    make_harness: MakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = await at_backup(make_harness)
    real_fsync, real_replace = os.fsync, os.replace
    last: list[str] = []

    def replace(src: Any, dst: Any, **kw: Any) -> None:
        real_replace(src, dst, **kw)
        last.append(Path(dst).name)

    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode) and last and last[-1] == "system.cfg":
            raise Crash
        real_fsync(fd)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(Crash):
        await h.run()
    monkeypatch.undo()
    # Power lost before the folder was synced: the rename did not survive.
    d = folder(h)
    os.replace(d / "system.cfg", d / "system.cfg.tmp")
    assert not (d / "manifest.json").exists()
    result = await h.run()  # another worker re-runs the step
    assert isinstance(result, Advance), result
    assert "verified" in result.detail
    assert_disk_matches_manifest(h)
    assert sorted(p.name for p in d.iterdir() if p.name.endswith(".tmp")) == []
    assert h.fake.count("export_config") == 4


# -- read back before the gate ---------------------------------------------------------
async def test_a_file_corrupted_after_writing_fails_naming_both_checksums(
    make_harness: MakeHarness, after_rename: dict[str, Callable[[Path], None]]
) -> None:
    h = await at_backup(make_harness)

    def flip_a_byte(_manifest: Path) -> None:
        p = folder(h) / "system.cfg"
        data = bytearray(p.read_bytes())
        data[len(data) // 2] ^= 0x01
        p.write_bytes(bytes(data))

    after_rename["manifest.json"] = flip_a_byte
    result = await h.run()
    assert isinstance(result, Fail), result
    want = {f["file"]: f["sha256"] for f in manifest(h)["files"]}["system.cfg"]
    _size, got = on_disk(folder(h) / "system.cfg")
    assert "system.cfg" in result.error and want in result.error and got in result.error
    assert "user.cfg" not in result.error  # only the bad file is named
    h.apply(result)
    assert h.job.state is State.FAILED and h.job.open_gate() is None  # no gate offered


async def test_a_file_missing_after_writing_fails_the_step(
    make_harness: MakeHarness, after_rename: dict[str, Callable[[Path], None]]
) -> None:
    h = await at_backup(make_harness)
    after_rename["manifest.json"] = lambda _p: (folder(h) / "user.cfg").unlink()
    result = await h.run()
    assert isinstance(result, Fail), result
    want = {f["file"]: f["sha256"] for f in manifest(h)["files"]}["user.cfg"]
    assert "user.cfg is missing" in result.error and want in result.error


async def test_a_manifest_that_does_not_match_the_files_fails_the_step(
    make_harness: MakeHarness, after_rename: dict[str, Callable[[Path], None]]
) -> None:
    h = await at_backup(make_harness)
    wrong = hashlib.sha256(b"not the export").hexdigest()

    def garble(path: Path) -> None:
        data = json.loads(path.read_bytes())
        data["files"][1]["sha256"] = wrong
        path.write_text(json.dumps(data))

    after_rename["manifest.json"] = garble
    result = await h.run()
    assert isinstance(result, Fail), result
    name = manifest(h)["files"][1]["file"]
    _size, got = on_disk(folder(h) / name)
    assert name in result.error and wrong in result.error and got in result.error


async def test_a_good_backup_says_verified(make_harness: MakeHarness) -> None:
    h = await at_backup(make_harness)
    result = await h.run()
    assert isinstance(result, Advance) and result.detail.startswith("verified: system.cfg")
    assert_disk_matches_manifest(h)
    assert manifest(h)["job"] == {"id": h.job.id, "cluster": "c1",
                                  "created_at": h.job.created_at}


# -- one folder, one job ----------------------------------------------------------------
async def test_a_new_job_refuses_a_folder_holding_another_jobs_backup(
    make_harness: MakeHarness,
) -> None:
    old = await at_backup(make_harness)
    assert isinstance(await old.run(), Advance)
    before = {n: (folder(old) / n).read_bytes() for n in NAMES}
    # Redis lost its data; a new job gets the same id and (same settings) the same folder.
    new = await at_backup(make_harness)
    new.job.created_at = old.job.created_at + 86400
    assert folder(new) == folder(old)
    result = await new.run()
    assert isinstance(result, Fail), result
    assert str(folder(new)) in result.error
    assert f"a manifest.json of job {new.job.id} of cluster c1 created 2027-01-15" in \
        result.error
    assert "neither reused nor overwritten" in result.error
    assert new.fake.count("export_config") == 0
    assert {n: (folder(old) / n).read_bytes() for n in NAMES} == before


@pytest.mark.parametrize(
    ("content", "found"),
    [
        ({"manifest.json": b'{"files": []}'}, "a manifest.json that names no job"),
        ({"manifest.json": b"{not json"}, "an unreadable manifest.json"),
        ({"system.cfg": b"someone's export"}, "no manifest and no owner file (system.cfg)"),
    ],
)
async def test_any_other_existing_folder_is_an_error_saying_what_was_found(
    make_harness: MakeHarness, content: dict[str, bytes], found: str
) -> None:
    h = await at_backup(make_harness)
    folder(h).mkdir(parents=True)
    for name, data in content.items():
        (folder(h) / name).write_bytes(data)
    result = await h.run()
    assert isinstance(result, Fail), result
    assert found in result.error and "neither reused nor overwritten" in result.error
    assert h.fake.count("export_config") == 0


async def test_an_empty_folder_or_interrupted_writes_only_are_claimed(
    make_harness: MakeHarness,
) -> None:
    h = await at_backup(make_harness)
    folder(h).mkdir(parents=True)
    (folder(h) / "system.cfg.tmp").write_bytes(b"half")
    result = await h.run()
    assert isinstance(result, Advance), result
    assert_disk_matches_manifest(h)
    owner = json.loads((folder(h) / "job.json").read_bytes())  # the folder names its job
    assert owner["job"] == manifest(h)["job"] == {
        "id": h.job.id, "cluster": "c1", "created_at": h.job.created_at}
    assert not (folder(h) / "system.cfg.tmp").exists()
