"""Step 2, backup: export system and user configuration from the acting node to disk.

Check first: a complete manifest of this very job (id and creation time) whose files match
means the backup is already done; a folder that belongs to anything else is an error, never
reused. After writing, every file is read back from disk and compared with the manifest
before the step ends, so the disable gate is only offered over a backup known to be good.
Then the configuration tree's snapshot for the drift check (`jobs.steps.drift`).
"""

from __future__ import annotations

import asyncio

from jobs.appliance.protocol import ExportKind
from jobs.rules.outputs import BackupOut
from jobs.steps.backup_files import (
    JobRef,
    backup_dir,
    foreign_content,
    read_backup,
    verify_backup,
    write_backup,
)
from jobs.steps.base import Advance, Fail, StepContext, StepResult
from jobs.steps.common import Failed, acting_node, attempt
from jobs.steps.drift import snapshot_before

KINDS: tuple[ExportKind, ...] = ("system", "user")


async def run(ctx: StepContext) -> StepResult:
    """Export both configurations, refuse empty ones, store them with a manifest, verify."""
    folder = backup_dir(ctx.settings.PPS_BACKUP_DIR, ctx.cluster.name, ctx.job.id)
    me = JobRef(ctx.job.id, ctx.cluster.name, ctx.job.created_at)
    try:
        foreign = await asyncio.to_thread(foreign_content, folder, me)
        done = None if foreign else await asyncio.to_thread(read_backup, folder, me)
    except OSError as exc:
        return Fail(f"Backup: cannot read {folder}: {exc.strerror or exc}")
    if foreign:
        return Fail(f"Backup: {foreign}")
    if done is not None:
        config, said = await snapshot_before(ctx, folder)
        return Advance(
            outputs=BackupOut(backups=done, backup_dir=str(folder), config_before=config),
            detail=f"verified, backup already in {folder}; {said}",
        )
    node = acting_node(ctx)
    exports: dict[str, bytes] = {}
    for kind in KINDS:
        data = await attempt(ctx.appliance.export_config(node, kind))
        if isinstance(data, Failed):
            return Fail(f"Backup: {kind} configuration export from {node} failed: {data.message}")
        if not data:
            return Fail(f"Backup: {kind} configuration export from {node} is empty; refusing it")
        exports[kind] = data
    build = (ctx.job.outputs.builds_before or {}).get(node, "")
    try:
        files = await asyncio.to_thread(
            write_backup, folder, me, exports, node, build, ctx.clock.now()
        )
        check = await asyncio.to_thread(verify_backup, folder)
    except OSError as exc:
        return Fail(f"Backup: cannot write to {folder}: {exc.strerror or exc}")
    if not check.ok or check.job != me or check.entries() != files:
        problems = check.problems() or [f"the manifest in {folder} is not the one written"]
        return Fail(f"Backup: read back from {folder}, " + "; ".join(problems))
    sizes = ", ".join(f"{f['file']} {_size(f['size'])}" for f in files)
    config, said = await snapshot_before(ctx, folder)  # drift check; never fails the backup
    return Advance(
        outputs=BackupOut(backups=files, backup_dir=str(folder), config_before=config),
        detail=f"verified: {sizes} from {node}; {said}",
    )


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / 1024 / 1024:.1f} MiB"
