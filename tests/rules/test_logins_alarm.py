"""Logins are never left disabled silently (DESIGN §1, §4.12): a failure after logins were
disabled, or during a step that may have disabled them, raises the LOGINS_DISABLED_ALERT
event, keeps the enable gate offered and working, and starts the reminders."""

from __future__ import annotations

import pytest

from jobs.procedures import UPGRADE
from jobs.rules.change import Change
from jobs.rules.events import EventKind
from jobs.rules.model import GateKind, State, Step
from jobs.steps.base import Advance, Fail
from tests.rules.rules_support import APPROVER, REMINDER_SECONDS, Flow

# Steps whose failure finds logins already disabled (step 5 went through) ...
AFTER_DISABLE = [Step.INSTALL, Step.WATCH_REBOOT, Step.SETTLE, Step.GATE_ENABLE,
                 Step.ENABLE_LOGINS]  # fmt: skip
# ... and the step whose failure may or may not have disabled them.
DISABLING = Step.DISABLE_LOGINS


def assert_alarm(f: Flow, change: Change, why: str) -> None:
    """The alarm of a job left with logins (maybe) disabled, raised in this very commit."""
    job = f.job
    kinds = [k for k, _ in change.events]
    alerts = [d for k, d in change.events if k is EventKind.LOGINS_DISABLED_ALERT]
    assert len(alerts) == 1, f"no LOGINS_DISABLED_ALERT event in {kinds}"
    assert alerts[0]["text"] == (
        f"{why}: user logins are still disabled on c1; "
        "approve the enable request to re-enable them."
    )
    assert job.logins_disabled and not job.settled and f.locked
    gate = job.open_gate()
    assert gate is not None and gate.kind is GateKind.APPROVAL and gate.step is Step.GATE_ENABLE
    assert (EventKind.GATE_OPENED, gate.id) in [(k, d.get("gate_id")) for k, d in change.events]
    assert EventKind.FINISHED not in kinds
    assert f.timer_kinds()["reminder"] == pytest.approx(f.clock.now() + REMINDER_SECONDS)


@pytest.mark.parametrize("step", AFTER_DISABLE)
def test_a_failure_after_logins_were_disabled_raises_the_alarm(step: Step) -> None:
    f = Flow().to(step)
    assert f.job.logins_disabled
    f.start()
    change = f.result(Fail("HTTP 500"))
    assert f.job.state is State.FAILED and f.job.error == "HTTP 500"
    assert_alarm(f, change, f"{UPGRADE.title_of(step)} failed: HTTP 500")


def test_a_failure_while_disabling_assumes_the_disable_went_through() -> None:
    f = Flow().to(DISABLING)
    assert not f.job.logins_disabled
    f.start()
    f.later(3)
    change = f.result(Fail("read timed out"))
    assert f.job.logins_disabled_at == f.clock.now()
    assert_alarm(f, change, f"{UPGRADE.title_of(DISABLING)} failed: read timed out")


def test_the_offered_enable_gate_still_works_and_the_job_ends_failed() -> None:
    f = Flow().to(Step.WATCH_REBOOT)
    f.step(Fail("east-b did not come back within 30 min"))
    f.later(REMINDER_SECONDS)
    f.remind()  # nobody answered yet: the reminder goes on
    assert len(f.events(EventKind.REMINDER)) == 1
    f.approve(APPROVER)
    assert f.job.step is Step.ENABLE_LOGINS and f.job.state is State.FAILED
    f.step(Advance())
    job = f.job
    assert job.state is State.FAILED and job.settled and not job.logins_disabled
    assert not f.locked and f.timer_kinds() == {}
    [finished] = f.events(EventKind.FINISHED)
    assert finished.data["state"] == "failed"
    assert finished.data["summary"]["error"] == "east-b did not come back within 30 min"


def test_enabling_fails_again_the_gate_is_offered_again_with_the_alarm() -> None:
    f = Flow().to(Step.SETTLE)
    f.step(Fail("node left the cluster"))
    f.approve(APPROVER)
    change = f.step(Fail("Cannot read the login permission"))
    assert f.job.state is State.FAILED
    why = f"{UPGRADE.title_of(Step.ENABLE_LOGINS)} failed: Cannot read the login permission"
    assert_alarm(f, change, why)


def test_no_alarm_when_logins_were_never_at_risk() -> None:
    f = Flow().to(Step.GATE_DISABLE)
    change = f.step(Fail("node unreachable"))
    assert EventKind.LOGINS_DISABLED_ALERT not in [k for k, _ in change.events]
    assert f.job.settled and not f.locked
