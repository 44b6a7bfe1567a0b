"""`ppsbot backups verify` run as a process (the real entry point) over folders that the real
backup step wrote, then damaged: a changed file, a lost file, a manifest that does not
match, a folder without a manifest."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from jobs.rules.model import Step
from jobs.steps.backup_files import backup_dir
from jobs.steps.base import Advance
from tests.fakes.harness import Harness

ROOT = Path(__file__).resolve().parents[2]
MakeHarness = Callable[..., Harness]


def ppsbot(cwd: Path, backups: Path, *args: str) -> tuple[int, str]:
    """Run `ppsbot backups verify ARGS` the way the console script does; (exit code, output)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PPS_BACKUP_DIR": str(backups)}
    proc = subprocess.run(
        [sys.executable, "-m", "bot.cli", "backups", "verify", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout + proc.stderr


async def backed_up(make_harness: MakeHarness, job_id: str) -> Path:
    """Run the real preflight and backup steps for job `job_id` of cluster c1."""
    h = make_harness("standalone", job_kw={"id": job_id})
    h.apply(await h.run(Step.PREFLIGHT))
    assert isinstance(await h.run(Step.BACKUP), Advance)
    return backup_dir(h.settings.PPS_BACKUP_DIR, "c1", job_id)


def rows(out: str) -> dict[tuple[str, str, str], str]:
    """The table: (job, cluster, file) -> sha256 column."""
    table: dict[tuple[str, str, str], str] = {}
    for line in out.splitlines():
        cells = line.split()
        if len(cells) == 5 and cells[0] != "job":
            table[(cells[0], cells[1], cells[2])] = cells[4]
    return table


async def test_good_backups_verify_and_exit_0(make_harness: MakeHarness, tmp_path: Path) -> None:
    first = await backed_up(make_harness, "J-A1")
    base = first.parent.parent
    # A second cluster's backup: the same files, with a manifest naming job J-B2 of c2.
    second = backup_dir(base, "c2", "J-B2")
    shutil.copytree(first, second)
    manifest = json.loads((second / "manifest.json").read_text())
    manifest["job"] = {"id": "J-B2", "cluster": "c2", "created_at": 1.0}
    (second / "manifest.json").write_text(json.dumps(manifest))
    code, out = ppsbot(tmp_path, base, "--all")
    assert code == 0, out
    assert out.splitlines()[0].split() == ["job", "cluster", "file", "size", "sha256"]
    assert rows(out) == {
        ("J-A1", "c1", "system.cfg"): "ok", ("J-A1", "c1", "user.cfg"): "ok",
        ("J-B2", "c2", "system.cfg"): "ok", ("J-B2", "c2", "user.cfg"): "ok",
    }
    size = str((first / "user.cfg").stat().st_size)
    assert size in out.splitlines()[2].split() and "all good: 2 backup(s)" in out
    code, out = ppsbot(tmp_path, base, "J-B2")  # one job only
    assert code == 0 and set(rows(out)) == {("J-B2", "c2", "system.cfg"),
                                            ("J-B2", "c2", "user.cfg")}, out


async def test_bad_backups_are_named_with_both_checksums_and_exit_1(
    make_harness: MakeHarness, tmp_path: Path
) -> None:
    changed, lost, lying, good = [
        await backed_up(make_harness, j) for j in ("J-CHANGED", "J-LOST", "J-LYING", "J-GOOD")]
    base = good.parent.parent
    want = {f["file"]: f["sha256"] for f in json.loads((changed / "manifest.json").read_text())[
        "files"]}
    (changed / "user.cfg").write_bytes(b"edited by hand")
    (lost / "system.cfg").unlink()
    manifest = json.loads((lying / "manifest.json").read_text())
    manifest["files"][0]["size"] += 1
    (lying / "manifest.json").write_text(json.dumps(manifest))
    half = backup_dir(base, "c1", "J-HALF")
    half.mkdir()
    (half / "system.cfg").write_bytes(b"no manifest was ever written")
    code, out = ppsbot(tmp_path, base)  # no argument: every backup
    assert code == 1, out
    table = rows(out)
    assert table[("J-CHANGED", "c1", "user.cfg")] == "mismatch"
    assert table[("J-CHANGED", "c1", "system.cfg")] == "ok"
    assert table[("J-LOST", "c1", "system.cfg")] == "missing"
    assert table[("J-LYING", "c1", "system.cfg")] == "mismatch"
    assert table[("J-HALF", "c1", "manifest.json")] == "missing"
    assert table[("J-GOOD", "c1", "user.cfg")] == table[("J-GOOD", "c1", "system.cfg")] == "ok"
    assert "4 problem(s)" in out
    assert want["user.cfg"] in out and hashlib.sha256(b"edited by hand").hexdigest() in out


async def test_unknown_or_malformed_job_ids(make_harness: MakeHarness, tmp_path: Path) -> None:
    base = (await backed_up(make_harness, "J-A1")).parent.parent
    code, out = ppsbot(tmp_path, base, "J-NOPE")
    assert code == 1 and "no backup of job J-NOPE" in out
    code, out = ppsbot(tmp_path, base, "../c1")
    assert code == 2 and "not a job id" in out
    code, out = ppsbot(tmp_path, tmp_path / "nowhere", "--all")
    assert code == 1 and "no backup folder" in out
