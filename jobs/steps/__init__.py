"""The step kinds: each module holds one kind's `run(ctx) -> StepResult` (checks the
appliance, acts at most once, verifies), plus what the steps share.

- `base`: the step contract (`StepContext`, the results `Advance`, `Poll`, `AskApproval`,
  `AskOperator`, `Fail`).
- `preflight`, `backup`, `record`, `gates`, `logins`, `install`, `watch`, `settle`, `verify`:
  the kinds; which a procedure runs, in which order, is its table in `jobs.procedures`.
- `rollback`: the rollback procedure's own step (the call, at most once) and its gate.
- `common`: the acting node, login targets, reads that never raise.
- `reboot_observer`: the reboot watch's decisions over successive polls (pure).
- `backup_files`: the backup folder on disk (files, manifest).
- `drift`, `config_diff`: the configuration drift check (snapshots, stored files) and its
  pure diff.
- `plan`: the plan preflight shows and the wording it uses.
"""

from jobs.steps.base import (
    Advance,
    AskApproval,
    AskOperator,
    Fail,
    Poll,
    StepContext,
    StepFn,
    StepResult,
)

__all__ = [
    "Advance",
    "AskApproval",
    "AskOperator",
    "Fail",
    "Poll",
    "StepContext",
    "StepFn",
    "StepResult",
]
