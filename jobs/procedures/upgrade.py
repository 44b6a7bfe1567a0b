"""The upgrade procedure (KB12940, DESIGN §1): the one table that says what each step is.

To add a step: write its module in jobs/steps/ (an `async def run(ctx) -> StepResult`), add
its kind to `jobs.rules.model.Step`, and add its row here at its place in the order.
"""

from __future__ import annotations

from jobs.procedures.spec import Logins, OnAbort, Procedure, StepSpec
from jobs.rules.model import Step
from jobs.rules.timer_names import SETTLE
from jobs.steps import backup, gates, install, logins, preflight, record, settle, verify, watch
from jobs.steps import plan as notes

UPGRADE = Procedure(
    name="upgrade",
    title="upgrade",
    done="every node runs the target build",
    rows=(
        StepSpec(
            Step.PREFLIGHT, "Preflight checks", preflight.run, ends_dry_run=True
        ),
        StepSpec(
            Step.BACKUP,
            "Back up system and user configuration",
            backup.run,
            note=notes.backup_note,
        ),
        StepSpec(Step.RECORD, "Record builds and active sessions", record.run),
        StepSpec(
            Step.GATE_DISABLE,
            "Approval: disable all user logins",
            gates.gate_disable,
            gate=True,
        ),
        StepSpec(
            Step.DISABLE_LOGINS,
            "Disable all user logins",
            logins.disable_logins,
            side_effect=True,
            manual="logins",
            logins_at_risk=True,
            on_abort=OnAbort.ENABLE_GATE,
            logins=Logins.DISABLED,
            note=notes.logins_note,
        ),
        StepSpec(
            Step.INSTALL,
            "Install firmware",
            install.run,
            side_effect=True,
            manual="install",
            logins_at_risk=True,
            on_abort=OnAbort.ENABLE_GATE_UNTIL_STARTED,
            note=notes.install_note,
        ),
        StepSpec(
            Step.WATCH_REBOOT,
            "Watch reboots until every node rejoins",
            watch.run,
            logins_at_risk=True,
            on_abort=OnAbort.REFUSE_FIRMWARE,
            note=notes.reboot_note,
        ),
        StepSpec(
            Step.SETTLE,
            "Settle wait after the last rejoin",
            settle.run,
            logins_at_risk=True,
            on_abort=OnAbort.REFUSE_FIRMWARE,
            wait=SETTLE,
            note=notes.settle_note,
        ),
        StepSpec(
            Step.GATE_ENABLE,
            "Approval: enable all user logins",
            gates.gate_enable,
            gate=True,
            on_abort=OnAbort.REFUSE_LOGINS_OFF,
        ),
        StepSpec(
            Step.ENABLE_LOGINS,
            "Enable all user logins",
            logins.enable_logins,
            side_effect=True,
            manual="logins",
            on_abort=OnAbort.REFUSE_ENABLING,
            logins=Logins.ENABLED,
            note=notes.logins_note,
        ),
        StepSpec(Step.VERIFY, "Verify target build and cluster health", verify.run),
    ),
)
