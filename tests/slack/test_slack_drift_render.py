"""The drift check in Slack: the summary says "configuration unchanged" or lists the changed
paths (the first 20, then a count), or that the tree could not be read; the card carries
verify's line; a dry run's preflight row warns. Every message stays valid Block Kit."""

from __future__ import annotations

import json
from typing import Any

from bot.render.card import card
from bot.render.limits import Message
from bot.render.summary import dry_run_plan, final_summary
from jobs.rules.model import Job, State, Step, StepRecord, StepStatus
from jobs.rules.outputs import DriftChange, DriftReport, Outputs
from jobs.rules.transitions import summary
from sim.slack.blocks import check_message

T0 = 1_800_000_000.0
EVIL = "<!channel>&<@U0EVIL>"


def job_with(drift: DriftReport | None) -> Job:
    job = Job(id="J-0042", cluster="cluster-east", target="9.1R18", requester="U_REQ",
              channel="C1", state=State.SUCCEEDED, step=Step.VERIFY, created_at=T0)
    job.outputs = Outputs(backup_dir="backups/cluster-east/J-0042")
    if drift is not None:
        job.outputs.drift = drift
    return job


def text_of(job: Job) -> str:
    msg: Message = final_summary(job, {"state": "succeeded", "summary": summary(job, T0 + 60)})
    check_message(msg.kwargs())
    return json.dumps(msg.kwargs(), ensure_ascii=False)


def test_summary_says_configuration_unchanged() -> None:
    text = text_of(job_with(DriftReport(status="unchanged", compared=85, file="config-diff.json")))
    assert "configuration unchanged (85 settings compared)" in text
    assert "configuration changed" not in text and "⚠️" not in text


def test_summary_lists_changed_paths_first_20_then_a_count() -> None:
    first = [DriftChange(op="~", path=f"/system/settings/key-{i:02d}") for i in range(20)]
    drift = DriftReport(status="changed", changed=24, removed=1, first=first, compared=90,
                        file="config-diff.json")
    text = text_of(job_with(drift))
    assert "configuration changed (24 changed, 1 removed)" in text
    assert "~ /system/settings/key-00" in text and "~ /system/settings/key-19" in text
    assert "… and 5 more" in text
    assert "Full diff: `config-diff.json` (`ppsbot diff J-0042`)" in text


def test_summary_says_when_the_tree_could_not_be_read() -> None:
    drift = DriftReport(status="unreadable", reason="before the upgrade: HTTP 500: down",
                        file="config-diff.json")
    text = text_of(job_with(drift))
    assert "configuration not compared (before the upgrade: HTTP 500: down)" in text


def test_summary_without_a_drift_check_says_nothing_about_it() -> None:
    assert "Drift check" not in text_of(job_with(None))


def test_paths_from_the_appliance_are_escaped_and_cut() -> None:
    first = [DriftChange(op="+", path="/users/" + EVIL + "x" * 300)]
    text = text_of(job_with(DriftReport(status="changed", added=1, first=first)))
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    assert "x" * 300 not in text


def test_card_carries_the_verify_line() -> None:
    job = job_with(DriftReport(status="unchanged"))
    job.set_step_record(Step.VERIFY, StepRecord(
        StepStatus.DONE, T0, T0 + 3,
        detail="2 node(s) on 9.1R18, cluster healthy; configuration unchanged"))
    msg = card(job)
    check_message(msg.kwargs())
    assert "configuration unchanged" in json.dumps(msg.kwargs())


def test_dry_run_row_warns_without_failing() -> None:
    rows: list[dict[str, Any]] = [
        {"check": "auth n1", "ok": True, "detail": "n1 answers"},
        {"check": "configuration tree", "ok": True, "warn": True,
         "detail": "configuration tree not readable from n1 (HTTP 500: down)"},
    ]
    msg = dry_run_plan(job_with(None), {"preflight": rows, "plan": {"steps": []}})
    check_message(msg.kwargs())
    text = json.dumps(msg.kwargs(), ensure_ascii=False)
    assert "⚠️ configuration tree not readable from n1" in text
    assert "✅ n1 answers" in text
