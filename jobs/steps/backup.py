"""Step 2, backup: export system and user configuration from the acting node to disk.

Check first: a complete manifest whose files match means the backup is already done. Then
the configuration tree's snapshot for the drift check (`jobs.steps.drift`).
"""

from __future__ import annotations

from jobs.appliance.protocol import ExportKind
from jobs.rules.outputs import BackupOut
from jobs.steps.backup_files import backup_dir, read_backup, write_backup
from jobs.steps.base import Advance, Fail, StepContext, StepResult
from jobs.steps.common import Failed, acting_node, attempt
from jobs.steps.drift import snapshot_before

KINDS: tuple[ExportKind, ...] = ("system", "user")


async def run(ctx: StepContext) -> StepResult:
    """Export both configurations, refuse empty ones, store them with a manifest."""
    folder = backup_dir(ctx.settings.PPS_BACKUP_DIR, ctx.cluster.name, ctx.job.id)
    done = read_backup(folder)
    if done is not None:
        config, said = await snapshot_before(ctx, folder)
        return Advance(
            outputs=BackupOut(backups=done, backup_dir=str(folder), config_before=config),
            detail=f"backup already in {folder}; {said}",
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
        files = write_backup(folder, exports, node, build, ctx.clock.now())
    except OSError as exc:
        return Fail(f"Backup: cannot write to {folder}: {exc.strerror or exc}")
    sizes = ", ".join(f"{f['file']} {_size(f['size'])}" for f in files)
    config, said = await snapshot_before(ctx, folder)  # drift check; never fails the backup
    return Advance(
        outputs=BackupOut(backups=files, backup_dir=str(folder), config_before=config),
        detail=f"{sizes} from {node}; {said}",
    )


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / 1024 / 1024:.1f} MiB"
