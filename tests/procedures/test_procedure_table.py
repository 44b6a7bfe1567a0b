"""The procedure table is the one place that says what each step is (DESIGN §1), and the
rules follow whatever table a job names."""

from __future__ import annotations

import pytest

from jobs.config.settings import Settings
from jobs.procedures import PROCEDURES, UPGRADE, Logins, OnAbort, Procedure, StepSpec
from jobs.procedures import manual_names as all_manual_names
from jobs.rules.change import Change
from jobs.rules.decisions import abort, approve
from jobs.rules.errors import AbortRefused
from jobs.rules.model import Job, State, Step, StepStatus
from jobs.rules.transitions import apply_result, start_step
from jobs.steps.base import Advance, AskApproval, StepContext, StepResult

NOW = 1_800_000_000.0


def settings() -> Settings:
    return Settings(_env_file=None)


def test_the_upgrade_table_encodes_design_section_1() -> None:
    assert UPGRADE.steps == tuple(Step)[: len(UPGRADE.steps)]
    assert UPGRADE.gates == (Step.GATE_DISABLE, Step.GATE_ENABLE)
    assert UPGRADE.side_effects == (Step.DISABLE_LOGINS, Step.INSTALL, Step.ENABLE_LOGINS)
    assert UPGRADE.enable_gate is Step.GATE_ENABLE
    at_risk = {r.step for r in UPGRADE.rows if r.logins_at_risk}
    assert at_risk == {Step.DISABLE_LOGINS, Step.INSTALL, Step.WATCH_REBOOT, Step.SETTLE}
    aborts = {r.step: r.on_abort for r in UPGRADE.rows}
    before_logins = [Step.PREFLIGHT, Step.BACKUP, Step.RECORD, Step.GATE_DISABLE]
    assert all(aborts[s] is OnAbort.CANCEL for s in before_logins)
    assert aborts[Step.DISABLE_LOGINS] is OnAbort.ENABLE_GATE
    assert aborts[Step.INSTALL] is OnAbort.ENABLE_GATE_UNTIL_STARTED
    assert aborts[Step.WATCH_REBOOT] is aborts[Step.SETTLE] is OnAbort.REFUSE_FIRMWARE
    assert UPGRADE.spec(Step.DISABLE_LOGINS).logins is Logins.DISABLED
    assert UPGRADE.spec(Step.ENABLE_LOGINS).logins is Logins.ENABLED
    assert all_manual_names() == ("logins", "install", "rollback")


def test_a_table_refuses_a_step_twice_or_a_gate_last() -> None:
    row = UPGRADE.spec(Step.PREFLIGHT)
    with pytest.raises(ValueError, match="twice"):
        Procedure("x", "x", "done", (row, row))
    gate = UPGRADE.spec(Step.GATE_ENABLE)
    with pytest.raises(ValueError, match="last"):
        Procedure("x", "x", "done", (row, gate))


async def _advance(ctx: StepContext) -> StepResult:
    return Advance(detail="ok")


async def _ask(ctx: StepContext) -> StepResult:
    return AskApproval(evidence={})


# A made-up second procedure over the same step kinds, in another order and with other rules:
# the engine must follow it without any change of code.
SHORT = Procedure(
    name="short",
    title="short run",
    done="short run complete",
    rows=(
        StepSpec(Step.RECORD, "Record first", _advance, on_abort=OnAbort.REFUSE_LOGINS_OFF),
        StepSpec(Step.GATE_ENABLE, "Approve the end", _ask, gate=True),
        StepSpec(Step.ENABLE_LOGINS, "Logins on", _advance, logins=Logins.ENABLED),
        StepSpec(Step.VERIFY, "Check", _advance),
    ),
)


@pytest.fixture
def short(monkeypatch: pytest.MonkeyPatch) -> Procedure:
    monkeypatch.setitem(PROCEDURES, SHORT.name, SHORT)
    return SHORT


def test_the_rules_follow_the_jobs_own_table(short: Procedure) -> None:
    cfg = settings()
    job = Job(id="J-9", cluster="c1", target="9.1R18", requester="U1", procedure=short.name)
    job.step = short.first
    titles = []
    for _ in range(10):
        if job.terminal:
            break
        spec = short.spec(job.step)
        titles.append(spec.title)
        start_step(job, Change(), NOW)
        result = Advance(detail="ok") if not spec.gate else AskApproval(evidence={})
        apply_result(job, result, NOW, cfg)
        gate = job.open_gate()
        if gate is not None:
            approve(job, gate.id, "U2", NOW, cfg)
    assert titles == ["Record first", "Approve the end", "Logins on", "Check"]
    assert job.state is State.SUCCEEDED
    assert job.step_record(Step.VERIFY).status is StepStatus.DONE
    assert job.step_record(Step.INSTALL).status is StepStatus.PENDING  # not in this table


def test_abort_follows_the_table(short: Procedure) -> None:
    job = Job(id="J-9", cluster="c1", target="9.1R18", requester="U1", procedure=short.name)
    job.step = Step.RECORD
    with pytest.raises(AbortRefused, match="approve the enable gate"):
        abort(job, "U2", NOW, settings())
