"""`ppsbot diff` in process: the text form of a stored diff, where it looks, its exit codes."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main as cli_main
from bot.diff import VALUE_CHARS, format_diff, main

DOC: dict[str, Any] = {
    "job": "J-0007", "cluster": "east", "status": "changed",
    "before": {"file": "config-before.json", "node": "east-a", "taken_at": 1_800_000_000,
               "complete": True, "objects": 21, "size": 4427, "stopped": None},
    "after": {"file": "config-after.json", "node": "east-a", "taken_at": 1_800_000_900,
              "complete": False, "objects": 20, "size": 4000,
              "stopped": "object cap of 20 reached"},
    "counts": {"added": 1, "removed": 1, "changed": 1}, "compared": 80,
    "added": [{"path": "/users/roles/New", "value": {"name": "New", "x": "y" * 400}}],
    "removed": [{"path": "/users/roles/Guests", "value": {"name": "Guests"}}],
    "changed": [{"path": "/system/idle", "before": 10, "after": 30}],
    "not_compared": ["/system/cluster"],
}


def stored(tmp_path: Path, cluster: str = "east", job: str = "J-0007") -> Path:
    folder = tmp_path / cluster / job
    folder.mkdir(parents=True)
    (folder / "config-diff.json").write_text(json.dumps(DOC))
    return folder


def test_format_lists_every_change_by_path_with_both_snapshots() -> None:
    lines = format_diff(DOC)
    assert lines[0] == ("Configuration drift of job J-0007 on east: "
                        "changed (1 changed, 1 removed, 1 added)")
    assert lines[1] == ("  before: east-a, 2027-01-15 08:00:00 UTC, 21 object(s) "
                        "(config-before.json)")
    assert "incomplete (object cap of 20 reached)" in lines[2]
    assert lines[3:6] == [
        "~ /system/idle: 10 -> 30",
        '- /users/roles/Guests: {"name": "Guests"}',
        lines[5],
    ]
    assert lines[5].startswith("+ /users/roles/New: ") and lines[5].endswith("…")
    assert len(lines[5]) == len("+ /users/roles/New: ") + VALUE_CHARS
    assert lines[6] == "not compared (left out of a snapshot): /system/cluster"


def test_format_unchanged_and_unreadable() -> None:
    same = {**DOC, "status": "unchanged", "counts": {}, "added": [], "removed": [],
            "changed": [], "not_compared": []}
    assert format_diff(same)[-1] == "80 setting(s) compared, none differ."
    unread = {"job": "J-1", "cluster": "c", "status": "unreadable", "before": None,
              "after": DOC["after"], "reason": "before the upgrade: HTTP 500: down"}
    lines = format_diff(unread)
    assert lines[0].endswith("unreadable — not compared (before the upgrade: HTTP 500: down)")
    assert lines[1] == "  before: no snapshot"


def test_backup_dir_with_and_without_cluster(tmp_path: Path) -> None:
    stored(tmp_path)
    for extra in ({"cluster": "east"}, {}):
        out = io.StringIO()
        assert main("J-0007", backup_base=str(tmp_path), out=out, **extra) == 0
        assert out.getvalue().startswith("Configuration drift of job J-0007 on east")
    out, err = io.StringIO(), io.StringIO()
    assert main("J-0007", backup_base=str(tmp_path), cluster="west", out=out, err=err) == 1
    assert out.getvalue() == "" and str(tmp_path / "west" / "J-0007") in err.getvalue()


def test_json_prints_the_stored_document(tmp_path: Path) -> None:
    stored(tmp_path)
    out = io.StringIO()
    assert main("J-0007", backup_base=str(tmp_path), as_json=True, out=out) == 0
    assert json.loads(out.getvalue()) == DOC


@pytest.mark.parametrize(
    ("job", "cluster"), [("../../etc", None), ("J-0007/x", None), ("J-0007", "../east"),
                         ("J-0007", "a/b"), ("x" * 25, None)],
)
def test_malformed_arguments_exit_2_and_touch_nothing(
    tmp_path: Path, job: str, cluster: str | None
) -> None:
    stored(tmp_path)
    err = io.StringIO()
    assert main(job, backup_base=str(tmp_path), cluster=cluster, err=err) == 2
    assert err.getvalue().startswith("not a")


def test_redis_unreachable_falls_back_to_the_backup_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored(tmp_path)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens there
    monkeypatch.setenv("PPS_BACKUP_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # no stray .env
    out, err = io.StringIO(), io.StringIO()
    assert main("J-0007", out=out, err=err) == 0
    assert "Redis did not answer" in err.getvalue() and "J-0007 on east" in out.getvalue()


def test_cli_dispatches_diff(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stored(tmp_path)
    assert cli_main(["diff", "J-0007", "--backup-dir", str(tmp_path), "--cluster", "east"]) == 0
    assert "~ /system/idle: 10 -> 30" in capsys.readouterr().out
    assert cli_main(["diff", "J-0008", "--backup-dir", str(tmp_path)]) == 1
