"""Pure state-machine units (no Redis): step results, the abort table, quiet states."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from engine_support import OTHER, REQUESTER, make_settings

from jobs.config.settings import Settings
from jobs.procedures import UPGRADE
from jobs.rules import decisions
from jobs.rules.change import Change
from jobs.rules.errors import AbortRefused, JobFinished
from jobs.rules.events import EventKind
from jobs.rules.model import GateKind, Job, State, Step, StepStatus
from jobs.rules.outputs import Outputs, VerifyOut
from jobs.rules.transitions import apply_result, set_state, start_step
from jobs.steps.base import Advance, AskApproval, AskOperator, Fail, Poll
from tests.fakes.clock import FakeClock

NOW = 1_800_000_000.0


@pytest.fixture
def cfg(tmp_path: Path) -> Settings:
    return make_settings("unit:", tmp_path)


def job_at(step: Step, state: State = State.RUNNING, **kw: Any) -> Job:
    job = Job(id="J-0007", cluster="solo", target="9.1R18", requester=REQUESTER, **kw)
    job.step, job.state = step, state
    return job


def kinds(change: Change) -> list[EventKind]:
    return [k for k, _ in change.events]


def test_queued_and_running_flip_quietly_other_states_are_announced() -> None:
    job, change = job_at(Step.BACKUP, State.QUEUED), Change()
    set_state(job, change, State.RUNNING)
    assert change.events == []
    set_state(job, change, State.WAITING, "polling")
    assert change.events == [
        (EventKind.STATE, {"from": "running", "to": "waiting", "reason": "polling"})
    ]


def test_start_step_announces_a_step_once(clock: FakeClock) -> None:
    job, change = job_at(Step.BACKUP, State.QUEUED), Change()
    start_step(job, change, NOW)
    assert kinds(change) == [EventKind.STEP_STARTED] and job.attempts == 1
    again = Change()
    start_step(job, again, NOW + 5)  # re-entered after a crash
    assert again.events == [] and job.attempts == 2
    assert job.step_record(Step.BACKUP).started_at == NOW


def test_advance_sets_and_clears_the_logins_flag(cfg: Settings) -> None:
    job = job_at(Step.DISABLE_LOGINS)
    apply_result(job, Advance(), NOW, cfg)
    assert job.logins_disabled and job.logins_disabled_at == NOW
    assert (job.step, job.state) == (Step.INSTALL, State.QUEUED)
    job.step = Step.ENABLE_LOGINS
    change = apply_result(job, Advance(), NOW + 90, cfg)
    assert not job.logins_disabled and job.logins_enabled_at == NOW + 90
    assert job.step is Step.VERIFY and [w["job_id"] for w in change.work] == [job.id]


def test_verify_advance_finishes_with_a_summary(cfg: Settings) -> None:
    job = job_at(Step.VERIFY, created_at=NOW - 600)
    job.logins_disabled_at, job.logins_enabled_at = NOW - 400, NOW - 100
    job.outputs = Outputs(builds_before={"n": "a"}, backups=[{"file": "system.cfg"}])
    change = apply_result(job, Advance(outputs=VerifyOut(builds_after={"n": "b"})), NOW, cfg)
    assert job.state is State.SUCCEEDED and job.finished_at == NOW and job.settled
    fin = dict(change.events)[EventKind.FINISHED]
    assert fin["state"] == "succeeded"
    s = fin["summary"]
    assert s["logins_disabled_seconds"] == 300 and s["total_seconds"] == 600
    assert s["builds_before"] == {"n": "a"} and s["builds_after"] == {"n": "b"}
    assert s["backups"] == [{"file": "system.cfg"}] and "verify" in s["durations"]


def test_poll_parks_on_a_poll_or_settle_timer(cfg: Settings) -> None:
    for step, kind in ((Step.WATCH_REBOOT, "poll"), (Step.SETTLE, "settle")):
        job = job_at(step)
        change = apply_result(job, Poll(7.5, progress="node back"), NOW, cfg)
        assert job.state is State.WAITING and job.wake_at == NOW + 7.5
        assert job.wake_timer.split("|")[1] == kind
        assert change.zadd == {job.wake_timer: int((NOW + 7.5) * 1000)}
        assert (EventKind.PROGRESS, {"step": step.value, "text": "node back"}) in change.events
        nxt = apply_result(job, Advance(), NOW + 8, cfg)
        assert job.wake_timer == "" and nxt.zrem  # the old timer is dropped


def test_ask_approval_keeps_a_held_or_failed_state(cfg: Settings) -> None:
    for state, expected in (
        (State.RUNNING, State.AWAITING_APPROVAL),
        (State.HELD, State.HELD),
        (State.FAILED, State.FAILED),
    ):
        job = job_at(Step.GATE_ENABLE, state, logins_disabled=True)
        change = apply_result(job, AskApproval(evidence={"e": 1}), NOW, cfg)
        gate = job.open_gate()
        assert gate is not None and gate.kind is GateKind.APPROVAL and job.state is expected
        opened = dict(change.events)[EventKind.GATE_OPENED]
        assert opened == {
            "gate_id": gate.id,
            "gate_kind": "approval",
            "step": "gate_enable",
            "evidence": {"e": 1},
        }
        assert job.reminder_timer  # logins off and a human awaited: reminders start


def test_ask_operator_opens_a_confirm_gate(cfg: Settings) -> None:
    job = job_at(Step.INSTALL, logins_disabled=True)
    change = apply_result(
        job, AskOperator("click Install", "unsupported", saw="no reboot"), NOW, cfg
    )
    gate = job.open_gate()
    assert gate is not None and gate.kind is GateKind.CONFIRM and gate.step is Step.INSTALL
    assert job.manual == {"install": "unsupported"} and job.state is State.AWAITING_APPROVAL
    assert dict(change.events)[EventKind.MANUAL] == {
        "gate_id": gate.id,
        "step": "install",
        "instructions": "click Install",
        "reason": "unsupported",
        "saw": "no reboot",
    }


@pytest.mark.parametrize("step", list(UPGRADE.steps))
def test_fail_at_each_step(cfg: Settings, step: Step) -> None:
    logins_off = step in (Step.GATE_ENABLE, Step.ENABLE_LOGINS)  # already disabled then
    job = job_at(step, logins_disabled=logins_off)
    change = apply_result(job, Fail("boom"), NOW, cfg)
    assert job.state is State.FAILED and job.error == "boom"
    assert job.step_record(step).status is StepStatus.FAILED or step is Step.GATE_ENABLE
    keeps_gate = logins_off or step in (
        Step.DISABLE_LOGINS,
        Step.INSTALL,
        Step.WATCH_REBOOT,
        Step.SETTLE,
    )
    if keeps_gate:
        assert not job.settled and job.logins_disabled and job.step is Step.GATE_ENABLE
        gate = job.open_gate()
        assert gate is not None and gate.step is Step.GATE_ENABLE
        assert EventKind.LOGINS_DISABLED_ALERT in kinds(change)
        assert EventKind.FINISHED not in kinds(change) and job.reminder_timer
    else:
        assert job.settled and job.open_gate() is None
        assert EventKind.FINISHED in kinds(change) and not job.reminder_timer


# The abort table of DESIGN §1: outcome per step (queued, step not started).
ABORT = {
    Step.PREFLIGHT: "cancel",
    Step.BACKUP: "cancel",
    Step.RECORD: "cancel",
    Step.GATE_DISABLE: "cancel",
    Step.DISABLE_LOGINS: "enable gate",
    Step.INSTALL: "enable gate",  # queued, install not started yet
    Step.WATCH_REBOOT: "refused",
    Step.SETTLE: "refused",
    Step.GATE_ENABLE: "refused",
    Step.ENABLE_LOGINS: "refused",
    Step.VERIFY: "cancel",
}


@pytest.mark.parametrize(("step", "outcome"), list(ABORT.items()))
def test_abort_table(cfg: Settings, step: Step, outcome: str) -> None:
    after_disable = UPGRADE.steps.index(step) > UPGRADE.steps.index(Step.DISABLE_LOGINS)
    logins_off = after_disable and step is not Step.VERIFY
    job = job_at(step, State.QUEUED, logins_disabled=logins_off)
    if outcome == "refused":
        with pytest.raises(AbortRefused):
            decisions.abort(job, OTHER, NOW, cfg)
        return
    decisions.abort(job, OTHER, NOW, cfg)
    assert job.outputs.aborted_by == OTHER
    if outcome == "cancel":
        assert job.state is State.CANCELLED and job.settled
    else:
        assert job.step is Step.GATE_ENABLE and job.state is State.AWAITING_APPROVAL
        assert job.open_gate() is not None


def test_abort_refusal_names_the_installing_node(cfg: Settings) -> None:
    job = job_at(Step.INSTALL, State.RUNNING, logins_disabled=True, acting_node="east-a")
    job.steps["install"] = {"status": "running", "started_at": NOW}
    with pytest.raises(AbortRefused) as exc:
        decisions.abort(job, OTHER, NOW, cfg)
    assert exc.value.reason == (
        "firmware install has started on east-a; the cluster must finish rebooting; "
        "approve the enable gate when it is offered"
    )


def test_abort_of_a_failed_job_with_logins_off_is_refused(cfg: Settings) -> None:
    job = job_at(Step.GATE_ENABLE, State.FAILED, logins_disabled=True)
    with pytest.raises(AbortRefused):
        decisions.abort(job, OTHER, NOW, cfg)
    job.logins_disabled = False
    with pytest.raises(JobFinished):
        decisions.abort(job, OTHER, NOW, cfg)
