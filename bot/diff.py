"""`ppsbot diff <job-id>`: print the configuration drift stored beside a job's backups.

The folder is `<backup dir>/<cluster>/<job-id>/`: with `--backup-dir` (and `--cluster`, else
every cluster folder is searched) it is taken from the options; otherwise the job's record
in Redis names it, and when Redis does not know the job, `PPS_BACKUP_DIR` is searched.
Exit 0 with the diff printed, 1 when no diff is stored, 2 for a malformed argument.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from jobs.config.clock import SystemClock
from jobs.config.settings import Settings
from jobs.steps.backup_files import backup_dir
from jobs.steps.drift import DIFF
from jobs.store.job_store import JobStore
from jobs.store.keys import Keys
from jobs.store.redis_client import make_redis

_JOB_ID = re.compile(r"^[A-Za-z0-9-]{1,24}$")
_CLUSTER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
VALUE_CHARS = 160  # a value longer than this is cut in the text form (`--json` has it all)
_OPS = {"changed": "~", "removed": "-", "added": "+"}


def _value(v: Any) -> str:
    text = json.dumps(v, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 1] + "…"


def _when(epoch: Any) -> str:
    if not isinstance(epoch, int | float):
        return "?"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def _side(label: str, meta: Any) -> str:
    if not isinstance(meta, dict):
        return f"  {label}: no snapshot"
    left = "" if meta.get("complete", True) else f", incomplete ({meta.get('stopped')})"
    return (f"  {label}: {meta.get('node')}, {_when(meta.get('taken_at'))}, "
            f"{meta.get('objects')} object(s){left} ({meta.get('file')})")


def format_diff(doc: dict[str, Any]) -> list[str]:
    """The stored diff as text lines: a heading, both snapshots, one line per change."""
    status = str(doc.get("status", "?"))
    head = f"Configuration drift of job {doc.get('job')} on {doc.get('cluster')}: {status}"
    counts = doc.get("counts") or {}
    parts = [f"{counts[k]} {k}" for k in ("changed", "removed", "added") if counts.get(k)]
    if status == "unreadable":
        head += f" — not compared ({doc.get('reason')})"
    elif parts:
        head += f" ({', '.join(parts)})"
    lines = [head, _side("before", doc.get("before")), _side("after ", doc.get("after"))]
    if status == "unchanged":
        lines.append(f"{doc.get('compared', 0)} setting(s) compared, none differ.")
    changes: list[tuple[str, str, str]] = []
    for kind, op in _OPS.items():
        for c in doc.get(kind) or []:
            if not isinstance(c, dict):
                continue
            if kind == "changed":
                text = f"{_value(c.get('before'))} -> {_value(c.get('after'))}"
            else:
                text = _value(c.get("value"))
            changes.append((str(c.get("path")), op, text))
    changes.sort(key=lambda c: (c[0], "-~+".index(c[1])))
    lines += [f"{op} {path}: {text}" for path, op, text in changes]
    skipped = doc.get("not_compared") or []
    if skipped:
        lines.append(f"not compared (left out of a snapshot): {', '.join(map(str, skipped))}")
    return lines


async def _folder_from_redis(settings: Settings, job_id: str) -> Path | None:
    r = make_redis(settings.REDIS_URL)
    try:
        store = JobStore(r, Keys(settings.PPS_REDIS_PREFIX), SystemClock())
        job = await asyncio.wait_for(store.get(job_id), timeout=5)
    finally:
        await r.aclose()
    if job is None:
        return None
    where = job.outputs.backup_dir
    return Path(where) if where else backup_dir(settings.PPS_BACKUP_DIR, job.cluster, job.id)


def _search(base: Path, job_id: str, cluster: str | None) -> list[Path]:
    if cluster:
        return [backup_dir(base, cluster, job_id)]
    return sorted(p.parent for p in base.glob(f"*/{job_id}/{DIFF}"))


def candidates(
    job_id: str, backup_base: str | None, cluster: str | None, err: TextIO
) -> list[Path]:
    """Folders that may hold the job's diff, most specific first."""
    if backup_base:
        return _search(Path(backup_base), job_id, cluster)
    settings = Settings()
    try:
        found = asyncio.run(_folder_from_redis(settings, job_id))
    except Exception as exc:  # Redis unreachable: say so, then look on disk
        print(f"note: Redis did not answer ({type(exc).__name__}); searching "
              f"{settings.PPS_BACKUP_DIR}", file=err)
        found = None
    if found is not None:
        return [found]
    return _search(Path(settings.PPS_BACKUP_DIR), job_id, cluster)


def main(
    job_id: str,
    *,
    backup_base: str | None = None,
    cluster: str | None = None,
    as_json: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Print the job's stored configuration diff; the exit code."""
    out, err = out or sys.stdout, err or sys.stderr
    if not _JOB_ID.match(job_id):
        print(f"not a job id: {job_id!r} (letters, digits and '-', at most 24)", file=err)
        return 2
    if cluster is not None and (not _CLUSTER.match(cluster) or ".." in cluster):
        print(f"not a cluster name: {cluster!r}", file=err)
        return 2
    looked = candidates(job_id, backup_base, cluster, err)
    for folder in looked:
        try:
            doc = json.loads((folder / DIFF).read_bytes())
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict):
            print(json.dumps(doc, indent=2) if as_json else "\n".join(format_diff(doc)),
                  file=out)
            return 0
    where = ", ".join(str(f) for f in looked) or "no backup folder of that job"
    print(f"no configuration diff stored for job {job_id} (looked in: {where})", file=err)
    return 1
