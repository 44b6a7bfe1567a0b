"""The worker process (`ppsbot worker`).

- `process`: `Worker`, the consume loop with APScheduler ticks (timer release, reclaim of a
  dead worker's items, lease heartbeat, presence, reminders behind a long step), graceful
  shutdown; `main`.
- `step_runner`: `Runner`, which runs ONE work item: take the lease, run the job's current
  step (or a reminder) within its time budget, apply the result with
  `jobs.rules.transitions`, commit fenced.
- `budget`: how long one attempt of a step may run, and what a cut-off attempt becomes.
"""

from jobs.worker.process import Worker, main
from jobs.worker.step_runner import Runner

__all__ = ["Runner", "Worker", "main"]
