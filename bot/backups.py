"""`ppsbot backups verify [<job-id> | --all]`: re-check stored backups against their manifests.

Reads `<PPS_BACKUP_DIR>/<cluster>/<job-id>/` from disk (no Redis, no appliance), prints a
table (job, cluster, file, size, sha256 ok / mismatch / missing) and then each problem with
both checksums. Exit code 0 when every backup is good, 1 on any problem (so it can run from
cron), 2 when the settings cannot be loaded or the job id is malformed.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from pydantic import ValidationError

from jobs.config.settings import Settings
from jobs.steps.backup_files import MANIFEST, backup_dir, verify_backup

HEADER = ("job", "cluster", "file", "size", "sha256")
JOB_ID_RE = re.compile(r"^[A-Za-z0-9-]{1,24}$")  # DESIGN §4.1; never a path


def find_backups(base: Path, job_id: str | None) -> list[Path]:
    """Every `<cluster>/<job-id>` folder under `base` (of one job, or all), sorted."""
    if not base.is_dir():
        return []
    clusters = sorted(p for p in base.iterdir() if p.is_dir())
    if job_id is not None:
        return [d for c in clusters if (d := backup_dir(base, c.name, job_id)).is_dir()]
    return [d for c in clusters for d in sorted(c.iterdir()) if d.is_dir()]


def check_folder(folder: Path) -> tuple[list[tuple[str, ...]], list[str]]:
    """The table rows of one backup folder and its problems."""
    job, cluster = folder.name, folder.parent.name
    v = verify_backup(folder)
    problems = [f"{cluster}/{job}: {p}" for p in v.problems()]
    if v.problem is not None:
        status = "missing" if not (folder / MANIFEST).exists() else "unreadable"
        return [(job, cluster, MANIFEST, "-", status)], problems
    if v.job is not None and (v.job.id, v.job.cluster) != (job, cluster):
        problems.append(f"{cluster}/{job}: the manifest names {v.job.describe()}")
    rows: list[tuple[str, ...]] = [
        (job, cluster, c.file, "-" if c.size is None else str(c.size), c.status)
        for c in v.checks
    ]
    return rows, problems


def format_table(rows: Sequence[tuple[str, ...]]) -> str:
    """Rows as aligned text columns under the header."""
    table = [HEADER, *rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in table
    )


def verify(base: Path, job_id: str | None, out: TextIO) -> int:
    """Check the backups of `job_id` (None: all) under `base`; print; return the exit code."""
    if job_id is not None and not JOB_ID_RE.match(job_id):
        print(f"not a job id: {job_id!r}", file=out)
        return 2
    folders = find_backups(base, job_id)
    if not folders:
        if not base.is_dir():
            print(f"no backup folder at {base} (PPS_BACKUP_DIR)", file=out)
            return 1
        if job_id is not None:
            print(f"no backup of job {job_id} under {base}", file=out)
            return 1
        print(f"no backups under {base}", file=out)
        return 0
    rows: list[tuple[str, ...]] = []
    problems: list[str] = []
    for folder in folders:
        folder_rows, folder_problems = check_folder(folder)
        rows += folder_rows
        problems += folder_problems
    print(format_table(rows), file=out)
    if problems:
        print(f"{len(problems)} problem(s):", file=out)
        for p in problems:
            print(f"  - {p}", file=out)
        return 1
    print(f"all good: {len(folders)} backup(s) match their manifests", file=out)
    return 0


def main(job_id: str | None, base: str | None = None, out: TextIO | None = None) -> int:
    """`ppsbot backups verify`: the backup folder comes from `base` or `PPS_BACKUP_DIR`."""
    out = out or sys.stdout
    if base is None:
        try:
            base = Settings().PPS_BACKUP_DIR
        except ValidationError as exc:
            print(f"settings: invalid ({exc.error_count()} error(s))", file=out)
            return 2
    return verify(Path(base), job_id, out)
