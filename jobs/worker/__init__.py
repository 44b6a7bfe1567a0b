"""The worker process (`ppsbot worker`).

- `process`: `Worker`, the consume loop with APScheduler ticks (timer release, reclaim of a
  dead worker's items, lease heartbeat, presence), graceful shutdown; `main`.
- `pool`: `ItemPool`, up to `PPS_WORKER_CONCURRENCY` items at once, never two of one job.
- `step_runner`: `Runner`, which runs ONE work item: take the lease, run the job's current
  step (or a reminder), apply the result with `jobs.rules.transitions`, commit fenced.
"""

from jobs.worker.process import Worker, main
from jobs.worker.step_runner import Runner

__all__ = ["Runner", "Worker", "main"]
