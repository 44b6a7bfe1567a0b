"""Everything that touches Redis, with the Lua scripts (DESIGN §2, "Redis model").

- `ports`: what the runner and the service need from the store, as Protocols (no redis
  import); the classes below implement them.
- `keys`: every key name under `PPS_REDIS_PREFIX`, in one place.
- `redis_client`: the one Redis client factory (timeouts, retries) and the outage backoff.
- `job_store`: `JobStore`, the `job:{id}` hash, job creation and the fenced commit of a job
  with its `jobs.rules.change.Change`.
- `work_queue`: the `queue` stream and its consumer group (at-least-once work items).
- `timers`: the `timers` zset of durable timers and its atomic release.
- `history`: the job history zsets (global and per cluster) and their upkeep.
- `rate_limit`: the per-user sliding window of upgrade requests.
- `lease`: the per-job lease with a fencing token.
- `presence`: which workers are alive.
- `dataloss`: the epoch marker that notices Redis losing its data.
- `fleet`: `FleetStore`, each cluster's last fleet poll, the per-cluster poll lock, and the
  job reads the fleet view needs.
- `home_viewers`: `HomeViewers`, who opened the App Home tab recently, and the per-user
  publish pace.
- `page_marks`: how each escalation webhook call of a job ended (sent at most once).
- `event_feed`: the `events` stream read through a group of its own (the worker metrics).
- `lua`: the scripts.
- `wiring`: `JobService` and `Runner` built over one Redis client.

Nothing outside this package, the worker process and the bot's wiring imports redis.
"""

from jobs.store.history import HistoryIndex
from jobs.store.job_store import JobStore, Snapshot
from jobs.store.keys import Keys
from jobs.store.lease import Lease, LeaseLost, RedisLeases
from jobs.store.presence import Presence
from jobs.store.rate_limit import RateLimiter
from jobs.store.redis_client import make_redis
from jobs.store.timers import Timers
from jobs.store.work_queue import WorkItem, WorkQueue

__all__ = [
    "HistoryIndex",
    "JobStore",
    "Keys",
    "Lease",
    "LeaseLost",
    "Presence",
    "RateLimiter",
    "RedisLeases",
    "Snapshot",
    "Timers",
    "WorkItem",
    "WorkQueue",
    "make_redis",
]
