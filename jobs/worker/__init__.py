"""The worker process (`ppsbot worker`).

- `process`: `Worker`, the consume loop with APScheduler ticks (timer release, reclaim of a
  dead worker's items, lease heartbeat, presence), graceful shutdown; `main`.
- `step_runner`: `Runner`, which runs ONE work item: take the lease, run the job's current
  step (or a reminder), apply the result with `jobs.rules.transitions`, commit fenced.
- `pager` and `webhook`: the escalation webhook (PagerDuty Events API v2), retried from
  durable timers, sent in the background.
- `metrics` and `metrics_server`: the metrics counted from the job events, served with
  `/healthz` on PPS_WORKER_METRICS_PORT.
"""

from jobs.worker.process import Worker, main
from jobs.worker.step_runner import Runner

__all__ = ["Runner", "Worker", "main"]
