"""The fleet view (DESIGN §5): every cluster at a glance, between and during jobs.

- `model`: `ClusterReading` / `NodeReading`, what one poll saw, and the marks computed from
  it (nodes disagree on the build, a node runs older than the catalogue's newest).
- `poller`: `FleetPoller`, the workers' read-only poll of every idle cluster, one worker
  per cluster at a time.
- `view`: `FleetView` / `FleetFacts`, the readings joined with each cluster's active and
  last job, for the App Home tab and `/pps clusters`.

Redis access is in `jobs.store.fleet`; this package talks to it through Protocols.
"""

from jobs.fleet.model import ClusterReading, NodeReading
from jobs.fleet.poller import FleetPoller, PollRound
from jobs.fleet.view import ClusterFacts, FleetFacts, FleetView

__all__ = [
    "ClusterFacts",
    "ClusterReading",
    "FleetFacts",
    "FleetPoller",
    "FleetView",
    "NodeReading",
    "PollRound",
]
