"""The drift check in the steps: snapshots at backup and verify, the stored files and the
manifest, the report, and that nothing about it ever fails a step (fake cluster, fake clock)."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from jobs.appliance.config_tree import ROOT_HREF
from jobs.rules.model import Step
from jobs.steps.backup_files import JobRef, backup_dir, read_backup
from jobs.steps.base import Advance, Fail
from jobs.steps.drift import AFTER, BEFORE, DIFF
from tests.fakes.config_tree import ROLES
from tests.fakes.harness import TARGET_BUILD, Harness

MakeHarness = Callable[..., Harness]
SETTINGS = f"{ROOT_HREF}/system"


async def at_backup(h: Harness) -> Advance:
    h.apply(await h.run(Step.PREFLIGHT))
    result = await h.run()
    assert isinstance(result, Advance), result
    h.apply(result)
    return result


def folder(h: Harness) -> Path:
    return backup_dir(h.settings.PPS_BACKUP_DIR, "c1", h.job.id)


def manifest(h: Harness) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder(h) / "manifest.json").read_text())
    return data


async def upgraded(h: Harness) -> Advance | Fail:
    """Drive from after the backup to the end; return verify's result."""
    result = await h.drive()
    assert isinstance(result, Advance | Fail)
    return result


async def test_backup_stores_the_tree_private_and_listed_in_the_manifest(
    make_harness: MakeHarness,
) -> None:
    h = make_harness("active-passive", vip=True)
    result = await at_backup(h)
    snap = result.outputs.config_before
    assert snap is not None and snap.readable and snap.node == "east-a"
    assert snap.objects == 5 and snap.not_read == 0 and snap.file == BEFORE
    assert "configuration tree: 5 object(s)" in result.detail
    path = folder(h) / BEFORE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = json.loads(path.read_text())
    assert doc["node"] == "east-a" and doc["complete"] is True
    assert doc["tree"]["users"]["user-roles"]["role"][1]["session-timeout"] == 15
    [entry] = manifest(h)["config"]
    assert entry["file"] == BEFORE and entry["sha256"] == snap.sha256
    me = JobRef(h.job.id, h.cluster.name, h.job.created_at)
    assert read_backup(folder(h), me) == result.outputs.backups  # the exports are still a backup
    assert h.fake.count("config_tree", "east-a") == 1


async def test_backup_reentry_reuses_the_stored_tree(make_harness: MakeHarness) -> None:
    h = make_harness("standalone")
    first = await at_backup(h)
    h.job.step = Step.BACKUP
    second = await h.run()
    assert isinstance(second, Advance) and "already" in second.detail
    assert second.outputs.config_before == first.outputs.config_before
    assert h.fake.count("config_tree") == 1
    (folder(h) / BEFORE).write_text("{}")  # no longer what the manifest says: read again
    third = await h.run()
    assert isinstance(third, Advance) and h.fake.count("config_tree") == 2


async def test_unreadable_tree_at_backup_is_reported_not_a_failure(
    make_harness: MakeHarness,
) -> None:
    h = make_harness("standalone")
    h.fake.fail_next("config_tree", 500)
    result = await at_backup(h)
    snap = result.outputs.config_before
    assert snap is not None and not snap.readable and "HTTP 500" in (snap.reason or "")
    assert "configuration tree not readable" in result.detail
    assert not (folder(h) / BEFORE).exists()
    final = await upgraded(h)
    assert isinstance(final, Advance), final
    drift = final.outputs.drift
    assert drift is not None and drift.status == "unreadable"
    assert drift.reason == "before the upgrade: HTTP 500: internal error"
    assert "configuration not compared" in final.detail
    assert json.loads((folder(h) / DIFF).read_text())["status"] == "unreadable"


async def test_verify_reports_configuration_unchanged(make_harness: MakeHarness) -> None:
    h = make_harness("active-active")
    await at_backup(h)
    final = await upgraded(h)
    assert isinstance(final, Advance) and h.fake.build_of("aa-3") == TARGET_BUILD
    drift = final.outputs.drift
    assert drift is not None and drift.status == "unchanged" and drift.compared == 10
    assert final.detail.endswith("configuration unchanged")
    names = {e["file"] for e in manifest(h)["config"]}
    assert names == {BEFORE, AFTER, DIFF}
    for name in names:
        assert stat.S_IMODE((folder(h) / name).stat().st_mode) == 0o600


async def test_verify_lists_what_changed_and_stores_the_full_diff(
    make_harness: MakeHarness,
) -> None:
    h = make_harness("standalone")
    await at_backup(h)
    h.fake.config[SETTINGS]["settings"]["allowed-protocols"] = "TLSv1.2"
    h.fake.config[f"{ROOT_HREF}/users"]["user-roles"]["role"].pop()  # Guests
    h.fake.config[f"{ROLES}/Employees"]["radius-secret"] = "new-secret"
    final = await upgraded(h)
    assert isinstance(final, Advance)
    drift = final.outputs.drift
    assert drift is not None and drift.status == "changed"
    assert (drift.added, drift.removed, drift.changed) == (1, 1, 1)
    assert [(c.op, c.path) for c in drift.first] == [
        ("~", "/system/settings/allowed-protocols"),
        ("+", "/users/user-roles/role/Employees/radius-secret"),
        ("-", "/users/user-roles/role/Guests"),
    ]
    assert final.detail.endswith("configuration changed: 1 changed, 1 removed, 1 added")
    full = json.loads((folder(h) / DIFF).read_text())
    assert full["changed"] == [{"path": "/system/settings/allowed-protocols",
                                "before": "TLSv1.1,TLSv1.2", "after": "TLSv1.2"}]
    assert full["before"]["file"] == BEFORE and full["after"]["file"] == AFTER
    assert "new-secret" not in json.dumps(full) and '"s3"' not in json.dumps(full)


async def test_only_the_first_paths_are_kept_in_the_report(make_harness: MakeHarness) -> None:
    h = make_harness("standalone")
    await at_backup(h)
    h.fake.config[SETTINGS]["settings"].update({f"new-{i:02d}": i for i in range(25)})
    final = await upgraded(h)
    drift = final.outputs.drift
    assert drift is not None and drift.added == 25 and len(drift.first) == 20
    assert len(json.loads((folder(h) / DIFF).read_text())["added"]) == 25


async def test_a_capped_snapshot_compares_what_both_read(make_harness: MakeHarness) -> None:
    h = make_harness("standalone", settings_kw={"PPS_CONFIG_MAX_OBJECTS": 3})
    result = await at_backup(h)
    snap = result.outputs.config_before
    assert snap is not None and snap.objects == 3 and snap.not_read == 2
    assert snap.reason == "object cap of 3 reached"
    assert "2 subtree(s) left out (object cap of 3 reached)" in result.detail
    h.fake.config[f"{ROLES}/Guests"]["session-timeout"] = 99  # inside what was left out
    final = await upgraded(h)
    drift = final.outputs.drift
    assert drift is not None and drift.status == "unchanged" and drift.not_compared == 2


async def test_verify_failure_still_reports_the_drift(make_harness: MakeHarness) -> None:
    h = make_harness("standalone")
    await at_backup(h)
    h.fake.config[SETTINGS]["settings"]["idle-timeout"] = 30
    h.job.target = "9.1R19"  # verify will find the node on another build
    result = await h.run(Step.VERIFY)
    assert isinstance(result, Fail) and "not 9.1R19" in result.error
    assert result.outputs is not None and result.outputs.drift is not None
    assert result.outputs.drift.status == "changed"


async def test_a_crash_in_the_drift_check_is_reported_not_raised(
    make_harness: MakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = make_harness("standalone")

    async def broken(node: str, limits: Any) -> Any:
        raise KeyError("bug")

    monkeypatch.setattr(h.fake, "config_tree", broken)
    result = await at_backup(h)
    snap = result.outputs.config_before
    assert snap is not None and snap.reason == "internal error (KeyError)"


async def test_a_refusing_disk_is_reported_not_a_failure(make_harness: MakeHarness) -> None:
    h = make_harness("standalone")
    await at_backup(h)
    (folder(h) / AFTER).mkdir()  # the snapshot cannot be written where it should go
    final = await upgraded(h)
    assert isinstance(final, Advance)
    after = final.outputs.config_after
    assert after is not None and not after.readable and "cannot be stored" in (after.reason or "")
    drift = final.outputs.drift
    assert drift is not None and drift.status == "unchanged"  # compared in memory anyway


async def test_dry_run_preflight_says_whether_the_tree_is_readable(
    make_harness: MakeHarness,
) -> None:
    h = make_harness("standalone", job_kw={"dry_run": True})
    ok = await h.run(Step.PREFLIGHT)
    assert isinstance(ok, Advance)
    row = ok.outputs.preflight[-1]
    assert row["check"] == "configuration tree" and row["ok"] and not row["warn"]
    assert row["detail"].startswith("configuration tree readable from solo: 5 object(s)")
    h.fake.fail_next("config_tree", 500)
    still_ok = await h.run(Step.PREFLIGHT)
    assert isinstance(still_ok, Advance)  # never a failed check
    row = still_ok.outputs.preflight[-1]
    assert row["ok"] and row["warn"] and "not readable from solo (HTTP 500" in row["detail"]
    real = make_harness("standalone")
    plain = await real.run(Step.PREFLIGHT)
    assert isinstance(plain, Advance)
    assert all(r["check"] != "configuration tree" for r in plain.outputs.preflight)
    assert real.fake.count("config_tree") == 0


async def test_verify_without_a_backup_folder_creates_none(make_harness: MakeHarness) -> None:
    h = make_harness("standalone")
    h.apply(await h.run(Step.PREFLIGHT))
    result = await h.run(Step.VERIFY)
    assert isinstance(result, Fail)  # still on the old build; the drift is reported anyway
    assert result.outputs is not None
    after, drift = result.outputs.config_after, result.outputs.drift
    assert after is not None and "the backup folder is missing" in (after.reason or "")
    assert drift is not None and drift.status == "unreadable" and drift.file is None
    assert drift.reason == f"no stored snapshot from before the upgrade ({BEFORE})"
    assert not folder(h).exists()
