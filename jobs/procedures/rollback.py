"""The rollback procedure (DESIGN §5): back to the build on the rollback partitions, with the
same care as an upgrade. The same step kinds as `UPGRADE` (its rows are reused where they
are the same), plus the `rollback` step in place of the install.

Preflight finds the rollback build on every node; it becomes the job's target, so the
reboot watch and verify compare against it as they do against an upgrade's target.
"""

from __future__ import annotations

from dataclasses import replace

from jobs.procedures.spec import OnAbort, Procedure, StepSpec
from jobs.procedures.upgrade import UPGRADE
from jobs.rules.model import Step
from jobs.steps import preflight, rollback, verify

same = UPGRADE.spec

ROLLBACK = Procedure(
    name="rollback",
    title="rollback",
    done="every node runs the rollback build",
    target_from_catalogue=False,
    rows=(
        replace(same(Step.PREFLIGHT), run=preflight.run_rollback),
        same(Step.BACKUP),
        same(Step.RECORD),
        replace(same(Step.GATE_DISABLE), run=rollback.gate_disable),
        same(Step.DISABLE_LOGINS),
        StepSpec(
            Step.ROLLBACK,
            "Roll back to the rollback partition",
            rollback.run,
            side_effect=True,
            manual="rollback",
            logins_at_risk=True,
            on_abort=OnAbort.ENABLE_GATE_UNTIL_STARTED,
            note=rollback.rollback_note,
        ),
        replace(same(Step.WATCH_REBOOT), run=rollback.watch_reboot),
        same(Step.SETTLE),
        same(Step.GATE_ENABLE),
        same(Step.ENABLE_LOGINS),
        replace(
            same(Step.VERIFY), title="Verify rollback build and cluster health", run=verify.run
        ),
    ),
)
