"""The worker process (`ppsbot worker`).

- `process`: `Worker`, the consume loop with APScheduler ticks (timer release, reclaim of a
  dead worker's items, lease heartbeat, presence, reminders behind a long step), graceful
  shutdown; `main`.
- `pool`: `ItemPool`, up to `PPS_WORKER_CONCURRENCY` items at once, never two of one job.
- `step_runner`: `Runner`, which runs ONE work item: take the lease, run the job's current
  step (or a reminder) within its time budget, apply the result with
  `jobs.rules.transitions`, commit fenced.
- `entry`: `main`, the `ppsbot worker` command (settings, logging, signals).
- `budget`: how long one attempt of a step may run, and what a cut-off attempt becomes.
- `pager` and `webhook`: the escalation webhook (PagerDuty Events API v2), retried from
  durable timers, sent in the background.
- `metrics` and `metrics_server`: the metrics counted from the job events, served with
  `/healthz` on PPS_WORKER_METRICS_PORT.
"""

from jobs.worker.entry import main
from jobs.worker.process import Worker
from jobs.worker.step_runner import Runner

__all__ = ["Runner", "Worker", "main"]
