"""Configuration drift: the configuration tree at backup and at verify, and what changed.

The backup step calls `snapshot_before`, verify calls `compare_after`, a dry run's preflight
calls `preflight_row`. Each reads the tree from the acting node (read-only, bounded by the
`PPS_CONFIG_*` settings) and never fails its step: a tree that cannot be read, or a disk
that refuses a file, is reported as such. Files in the backup folder (mode 0600):
`config-before.json`, `config-after.json`, `config-diff.json`, listed in the manifest under
`config` (its `files` stay the two exports).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import structlog

from jobs.appliance.config_tree import ConfigTree, MiB, TreeLimits
from jobs.appliance.protocol import ApplianceError
from jobs.config.log import get_logger
from jobs.config.settings import Settings
from jobs.rules.outputs import ConfigSnapshot, DriftChange, DriftReport
from jobs.steps.backup_files import MANIFEST
from jobs.steps.backup_files import write_durable as write_private
from jobs.steps.base import StepContext
from jobs.steps.common import acting_node
from jobs.steps.config_diff import FIRST_LINES, diff_trees

BEFORE, AFTER, DIFF = "config-before.json", "config-after.json", "config-diff.json"
CONFIG_FILES = (BEFORE, AFTER, DIFF)


def log() -> structlog.stdlib.BoundLogger:
    return get_logger("jobs.drift")


def limits(settings: Settings) -> TreeLimits:
    return TreeLimits(
        max_bytes=max(1, int(settings.PPS_CONFIG_MAX_MB * MiB)),
        max_objects=settings.PPS_CONFIG_MAX_OBJECTS,
        seconds=settings.PPS_CONFIG_TIMEOUT_SECONDS,
    )


# -- reading ---------------------------------------------------------------------------
async def _read(ctx: StepContext, node: str | None = None) -> tuple[str, ConfigTree | str]:
    """(node, the tree or why it could not be read). Never raises."""
    node = node or acting_node(ctx)
    try:
        return node, await ctx.appliance.config_tree(node, limits(ctx.settings))
    except ApplianceError as exc:
        return node, exc.message
    except Exception as exc:  # a drift check must never fail the job it reports on
        log().exception("drift.read_crashed", job_id=ctx.job.id, cluster=ctx.cluster.name)
        return node, f"internal error ({type(exc).__name__})"


def _doc(node: str, at: float, tree: ConfigTree) -> dict[str, Any]:
    return {
        "node": node,
        "taken_at": at,
        "complete": tree.complete,
        "objects": tree.objects,
        "size": tree.size,
        "stopped": tree.stopped,
        "not_read": [{"path": m.path, "reason": m.reason} for m in tree.not_read],
        "tree": tree.tree,
    }


def _left_out(tree: ConfigTree) -> str | None:
    if tree.stopped:
        return tree.stopped
    return tree.not_read[0].reason if tree.not_read else None


async def _snapshot(ctx: StepContext, folder: Path, name: str) -> tuple[ConfigSnapshot, Any]:
    """Read the tree and store it as `name`: (its record, the stored document or None)."""
    at = ctx.clock.now()
    node, got = await _read(ctx)
    if isinstance(got, str):
        return ConfigSnapshot(readable=False, node=node, at=at, reason=got), None
    doc = _doc(node, at, got)
    record = ConfigSnapshot(
        readable=True,
        node=node,
        at=at,
        file=name,
        objects=got.objects,
        size=got.size,
        not_read=len(got.not_read),
        reason=_left_out(got),
    )
    try:
        record.sha256 = _store(folder, name, doc, kind=name.removesuffix(".json"), node=node, at=at)
    except OSError as exc:
        why = f"read, but it cannot be stored in {folder}: {exc.strerror or exc}"
        return ConfigSnapshot(readable=False, node=node, at=at, reason=why), doc
    return record, doc


# -- files -----------------------------------------------------------------------------
def _store(folder: Path, name: str, doc: Any, *, kind: str, node: str, at: float) -> str:
    """Write `doc` as `name` (0600, atomically) and list it in the manifest; its sha256."""
    data = json.dumps(doc, indent=1, sort_keys=True).encode()
    if not folder.is_dir():  # the backup made it; a folder made here would belong to no one
        raise FileNotFoundError(2, "the backup folder is missing", str(folder))
    write_private(folder / name, data)
    digest = hashlib.sha256(data).hexdigest()
    entry = {"file": name, "kind": kind, "sha256": digest, "size": len(data), "node": node,
             "time": at}
    _list_in_manifest(folder, entry)
    return digest


def _list_in_manifest(folder: Path, entry: dict[str, Any]) -> None:
    """Add or replace `entry` under the manifest's `config` (only when a manifest exists:
    one is written last by the backup, and this must not fake a complete backup)."""
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_bytes())
    except FileNotFoundError:
        return
    except ValueError:
        return  # a broken manifest is the backup's to report, not rewritten here
    if not isinstance(manifest, dict):
        return
    listed = [e for e in manifest.get("config") or [] if isinstance(e, dict)]
    manifest["config"] = [e for e in listed if e.get("file") != entry["file"]] + [entry]
    write_private(path, json.dumps(manifest, indent=2).encode())


def listed(folder: Path, name: str) -> tuple[dict[str, Any], str] | None:
    """(the stored document `name`, its sha256) when the manifest lists it and it matches."""
    try:
        manifest = json.loads((folder / MANIFEST).read_bytes())
        entry = next(e for e in manifest.get("config") or [] if e.get("file") == name)
        data = (folder / name).read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        doc = json.loads(data)
    except (OSError, ValueError, StopIteration, AttributeError, TypeError):
        return None
    return (doc, digest) if isinstance(doc, dict) and digest == entry.get("sha256") else None


# -- the three entry points ------------------------------------------------------------
async def snapshot_before(ctx: StepContext, folder: Path) -> tuple[ConfigSnapshot, str]:
    """The tree before the change, stored once (a re-run finds it): (record, a phrase)."""
    stored = listed(folder, BEFORE)
    if stored is not None:
        doc, digest = stored
        record = ConfigSnapshot(
            readable=True,
            node=str(doc.get("node")),
            at=float(doc.get("taken_at") or 0),
            file=BEFORE,
            sha256=digest,
            objects=int(doc.get("objects") or 0),
            size=int(doc.get("size") or 0),
            not_read=len(doc.get("not_read") or []),
            reason=doc.get("stopped"),
        )
    else:
        record, _ = await _snapshot(ctx, folder, BEFORE)
    return record, snapshot_phrase(record)


async def compare_after(
    ctx: StepContext, folder: Path
) -> tuple[ConfigSnapshot, DriftReport, str]:
    """The tree now, compared with the one from before: (record, report, a phrase)."""
    after, after_doc = await _snapshot(ctx, folder, AFTER)
    stored = listed(folder, BEFORE)
    before_doc = stored[0] if stored else None
    report = _report(ctx, before_doc, after_doc, after)
    full: dict[str, Any] = {
        "job": ctx.job.id,
        "cluster": ctx.cluster.name,
        "before": _meta(before_doc, BEFORE),
        "after": _meta(after_doc, AFTER),
    }
    if before_doc is not None and after_doc is not None:
        skip = [m["path"] for d in (before_doc, after_doc) for m in d.get("not_read") or []]
        diff = diff_trees(before_doc.get("tree"), after_doc.get("tree"), skip)
        full.update(diff.to_json())
        report = DriftReport(
            status="unchanged" if diff.unchanged else "changed",
            added=len(diff.added),
            removed=len(diff.removed),
            changed=len(diff.changed),
            first=[DriftChange(op=c.op, path=c.path) for c in diff.changes()[:FIRST_LINES]],
            compared=diff.compared,
            not_compared=len(diff.not_compared),
        )
    else:
        full.update({"status": "unreadable", "reason": report.reason})
    try:
        _store(folder, DIFF, full, kind="config-diff", node=after.node, at=after.at)
        report.file = DIFF
    except OSError as exc:
        log().warning("drift.diff_not_stored", job_id=ctx.job.id, error=exc.strerror)
    log().info(
        "drift.compared",
        job_id=ctx.job.id,
        cluster=ctx.cluster.name,
        status=report.status,
        added=report.added,
        removed=report.removed,
        changed=report.changed,
    )
    return after, report, drift_phrase(report)


def _meta(doc: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
    if doc is None:
        return None
    keys = ("node", "taken_at", "complete", "objects", "size", "stopped")
    return {"file": name, **{k: doc.get(k) for k in keys}}


def _report(
    ctx: StepContext, before_doc: Any, after_doc: Any, after: ConfigSnapshot
) -> DriftReport:
    """The report when a side is missing (else replaced by the diff's)."""
    if before_doc is None:
        rec = ctx.job.outputs.config_before
        why = rec.reason if rec is not None and not rec.readable else None
        reason = f"before the upgrade: {why}" if why else (
            f"no stored snapshot from before the upgrade ({BEFORE})")
        return DriftReport(status="unreadable", reason=reason)
    if after_doc is None or not after.readable:
        return DriftReport(status="unreadable", reason=f"after the upgrade: {after.reason}")
    return DriftReport(status="unchanged")


async def preflight_row(ctx: StepContext, node: str | None) -> dict[str, Any]:
    """A dry run's row: is the tree readable within the caps? Never a failed check."""
    node, got = await _read(ctx, node)
    if isinstance(got, str):
        detail = (f"configuration tree not readable from {node} ({got}); the drift report "
                  "will say so, the upgrade is not blocked")
        return {"check": "configuration tree", "ok": True, "warn": True, "detail": detail}
    detail = f"configuration tree readable from {node}: {_amount(got.objects, got.size)}"
    if got.not_read:
        detail += f", {len(got.not_read)} subtree(s) left out ({_left_out(got)})"
    return {"check": "configuration tree", "ok": True, "warn": bool(got.not_read),
            "detail": detail}


# -- wording ---------------------------------------------------------------------------
def _amount(objects: int, size: int) -> str:
    kib = size / 1024
    return f"{objects} object(s), {kib:.1f} KiB" if kib >= 0.1 else f"{objects} object(s)"


def snapshot_phrase(rec: ConfigSnapshot) -> str:
    if not rec.readable:
        return f"configuration tree not readable ({rec.reason})"
    text = f"configuration tree: {_amount(rec.objects, rec.size)}"
    if rec.not_read:
        text += f", {rec.not_read} subtree(s) left out ({rec.reason})"
    return text


def drift_phrase(report: DriftReport) -> str:
    if report.status == "unreadable":
        return f"configuration not compared ({report.reason})"
    if report.status == "unchanged":
        return "configuration unchanged"
    return "configuration changed: " + change_counts(report)


def change_counts(report: DriftReport) -> str:
    parts = [(report.changed, "changed"), (report.removed, "removed"), (report.added, "added")]
    return ", ".join(f"{n} {word}" for n, word in parts if n)
