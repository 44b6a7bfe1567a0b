"""Backup (files, modes, manifest, check-first) and record (builds, uptimes, sessions)."""

from __future__ import annotations

import hashlib
import json
import stat
from collections.abc import Callable
from pathlib import Path

from jobs.appliance.protocol import VIP
from jobs.rules.model import Step
from jobs.steps.backup_files import backup_dir, read_backup
from jobs.steps.base import Advance, Fail
from tests.fakes.harness import RUNNING, Harness

MakeHarness = Callable[..., Harness]


async def ready(h: Harness) -> None:
    result = await h.run(Step.PREFLIGHT)
    h.apply(result)
    assert h.job.step == Step.BACKUP


def folder(h: Harness) -> Path:
    return backup_dir(h.settings.PPS_BACKUP_DIR, "c1", h.job.id)


async def test_backup_writes_private_files_and_a_manifest(make_harness: MakeHarness) -> None:
    h = make_harness("active-passive", vip=True)
    await ready(h)
    result = await h.run()
    assert isinstance(result, Advance), result
    d = folder(h)
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    for name in ("system.cfg", "user.cfg", "manifest.json"):
        assert stat.S_IMODE((d / name).stat().st_mode) == 0o600
    manifest = json.loads((d / "manifest.json").read_text())
    by_file = {f["file"]: f for f in manifest["files"]}
    data = (d / "system.cfg").read_bytes()
    assert by_file["system.cfg"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert by_file["system.cfg"]["size"] == len(data) > 0
    assert by_file["user.cfg"]["node"] == "east-a"
    assert by_file["user.cfg"]["build"] == RUNNING
    assert by_file["user.cfg"]["time"] == h.clock.now()
    assert result.outputs.backups == read_backup(d)
    assert h.fake.count("export_config", "east-a") == 2


async def test_backup_reentry_does_not_export_again(make_harness: MakeHarness) -> None:
    h = make_harness("standalone")
    await ready(h)
    first = await h.run()
    second = await h.run()
    assert isinstance(first, Advance) and isinstance(second, Advance)
    assert second.outputs.backups == first.outputs.backups
    assert "already" in second.detail
    assert h.fake.count("export_config") == 2


async def test_backup_redone_when_a_file_no_longer_matches(make_harness: MakeHarness) -> None:
    h = make_harness("standalone")
    await ready(h)
    await h.run()
    (folder(h) / "user.cfg").write_bytes(b"tampered")
    assert read_backup(folder(h)) is None
    result = await h.run()
    assert isinstance(result, Advance)
    assert h.fake.count("export_config") == 4
    assert read_backup(folder(h)) == result.outputs.backups


async def test_backup_refuses_empty_exports_and_unreachable_node(
    make_harness: MakeHarness,
) -> None:
    h = make_harness("standalone")
    await ready(h)
    h.fake.empty_export = True
    result = await h.run()
    assert isinstance(result, Fail)
    assert "system configuration export from solo failed" in result.error
    assert "empty configuration export" in result.error
    assert not (folder(h) / "manifest.json").exists()
    h.fake.empty_export = False
    h.fake.set_down("solo")
    result = await h.run()
    assert isinstance(result, Fail) and "solo" in result.error


async def test_backup_write_failure_fails_cleanly(make_harness: MakeHarness) -> None:
    h = make_harness("standalone")
    await ready(h)
    folder(h).parent.mkdir(parents=True)
    folder(h).write_text("not a folder")
    result = await h.run()
    assert isinstance(result, Fail) and result.error.startswith("Backup: cannot write to")


async def test_record_reads_builds_rollbacks_uptimes_and_sessions(
    make_harness: MakeHarness,
) -> None:
    h = make_harness("active-passive", vip=True)
    await ready(h)
    result = await h.run(Step.RECORD)
    assert isinstance(result, Advance), result
    rec = result.outputs.record
    assert rec["nodes"]["east-b"]["build"] == RUNNING
    assert rec["nodes"]["east-b"]["rollback_build"] == "9.1R16 (build 26213)"
    assert rec["nodes"]["east-a"]["uptime"] == 30 * 86400
    assert rec["sessions"] == 412 and rec["login_permission"] is True
    assert rec["read_via"] == "the VIP"
    assert h.fake.count("active_users", VIP) == 2  # preflight + record
    h.fake.set_down("east-b")
    failed = await h.run(Step.RECORD)
    assert isinstance(failed, Fail) and "east-b" in failed.error
