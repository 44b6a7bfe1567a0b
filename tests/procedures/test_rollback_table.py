"""The rollback table (DESIGN §5): the upgrade's step kinds with `rollback` in place of the
install, the same gates, side effects, abort rules and login rules; its target is found by
preflight and becomes the job's."""

from __future__ import annotations

import pytest

from jobs.config.settings import Settings
from jobs.procedures import PROCEDURES, ROLLBACK, UPGRADE, OnAbort, procedure_for
from jobs.rules.change import Change
from jobs.rules.decisions import abort
from jobs.rules.errors import AbortRefused
from jobs.rules.model import Job, State, Step, StepStatus
from jobs.rules.outputs import PreflightOut
from jobs.rules.transitions import apply_result, start_step
from jobs.steps.base import Advance

NOW = 1_800_000_000.0


def rollback_job() -> Job:
    return Job(id="J-9", cluster="c1", target="", requester="U1", procedure="rollback")


def test_the_rollback_table_mirrors_the_upgrade_with_its_own_step() -> None:
    assert PROCEDURES["rollback"] is ROLLBACK and not ROLLBACK.target_from_catalogue
    swapped = [Step.ROLLBACK if s is Step.INSTALL else s for s in UPGRADE.steps]
    assert list(ROLLBACK.steps) == swapped
    assert ROLLBACK.gates == UPGRADE.gates
    assert ROLLBACK.side_effects == (Step.DISABLE_LOGINS, Step.ROLLBACK, Step.ENABLE_LOGINS)
    assert ROLLBACK.enable_gate is Step.GATE_ENABLE
    at_risk = {r.step for r in ROLLBACK.rows if r.logins_at_risk}
    assert at_risk == {Step.DISABLE_LOGINS, Step.ROLLBACK, Step.WATCH_REBOOT, Step.SETTLE}
    for step in ROLLBACK.steps:
        if step is not Step.ROLLBACK:
            assert ROLLBACK.spec(step).on_abort is UPGRADE.spec(step).on_abort, step
    row = ROLLBACK.spec(Step.ROLLBACK)
    assert row.manual == "rollback" and row.on_abort is OnAbort.ENABLE_GATE_UNTIL_STARTED
    assert ROLLBACK.title == "rollback" and "Verify rollback build" in ROLLBACK.title_of(
        Step.VERIFY
    )


def test_preflight_output_makes_the_rollback_build_the_job_target() -> None:
    job = rollback_job()
    assert procedure_for(job) is ROLLBACK
    start_step(job, Change(), NOW)
    apply_result(job, Advance(outputs=PreflightOut(target_build="9.1R16 (build 2)")), NOW,
                 Settings(_env_file=None))
    assert job.target == "9.1R16 (build 2)" and job.step is Step.BACKUP


@pytest.mark.parametrize(("started", "refused"), [(False, False), (True, True)])
def test_abort_at_the_rollback_step_follows_the_install_rule(started: bool, refused: bool) -> None:
    job = rollback_job()
    job.step, job.state, job.logins_disabled = Step.ROLLBACK, State.QUEUED, True
    if started:
        start_step(job, Change(), NOW)
    if refused:
        with pytest.raises(AbortRefused):
            abort(job, "U2", NOW, Settings(_env_file=None))
        return
    abort(job, "U2", NOW, Settings(_env_file=None))
    gate = job.open_gate()
    assert gate is not None and gate.step is Step.GATE_ENABLE
    assert job.step_record(Step.ROLLBACK).status is StepStatus.SKIPPED
