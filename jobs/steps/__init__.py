"""The 11 steps of KB12940 as step functions (`STEP_IMPLS`), one module per concern."""

from __future__ import annotations

from jobs.rules.model import Step
from jobs.steps import backup, gates, install, logins, preflight, record, settle, verify, watch
from jobs.steps.base import StepFn

STEP_IMPLS: dict[Step, StepFn] = {
    Step.PREFLIGHT: preflight.run,
    Step.BACKUP: backup.run,
    Step.RECORD: record.run,
    Step.GATE_DISABLE: gates.gate_disable,
    Step.DISABLE_LOGINS: logins.disable_logins,
    Step.INSTALL: install.run,
    Step.WATCH_REBOOT: watch.run,
    Step.SETTLE: settle.run,
    Step.GATE_ENABLE: gates.gate_enable,
    Step.ENABLE_LOGINS: logins.enable_logins,
    Step.VERIFY: verify.run,
}

__all__ = ["STEP_IMPLS"]
