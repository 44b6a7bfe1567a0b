"""Typed errors the engine raises for human requests; handlers turn them into messages.

Each carries a `message` safe to show in Slack (no secrets, no tracebacks).
"""

from __future__ import annotations


class EngineError(Exception):
    """Base class: a request the engine refused; nothing changed."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnknownJob(EngineError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"No job `{job_id}`.")
        self.job_id = job_id


class UnknownCluster(EngineError):
    def __init__(self, cluster: str) -> None:
        super().__init__(f"Unknown cluster {cluster!r}.")
        self.cluster = cluster


class ClusterBusy(EngineError):
    """Another job holds the cluster (DESIGN §4.2)."""

    def __init__(self, cluster: str, job_id: str, requester: str) -> None:
        super().__init__(
            f"Cluster {cluster} already has an active job `{job_id}` requested by <@{requester}>."
        )
        self.cluster = cluster
        self.job_id = job_id
        self.requester = requester


class JobFinished(EngineError):
    def __init__(self, job_id: str, state: str) -> None:
        super().__init__(f"Job `{job_id}` is already {state}.")
        self.job_id = job_id
        self.state = state


class StaleGate(EngineError):
    """The gate was already decided, or is not the job's current gate."""

    def __init__(
        self,
        job_id: str,
        gate_id: str,
        decided_by: str | None = None,
        decision: str | None = None,
    ) -> None:
        if decided_by:
            outcome = f" ({decision})" if decision else ""
            msg = f"Already decided by <@{decided_by}>{outcome}."
        elif decision == "expired":
            msg = f"Nobody answered that request in time: job `{job_id}` was cancelled."
        else:
            msg = f"That request for job `{job_id}` is no longer current."
        super().__init__(msg)
        self.job_id = job_id
        self.gate_id = gate_id
        self.decided_by = decided_by
        self.decision = decision


class TwoPersonRule(EngineError):
    def __init__(self, job_id: str) -> None:
        super().__init__(
            f"Two-person rule: the requester of `{job_id}` cannot approve or confirm its steps."
        )
        self.job_id = job_id


class AbortRefused(EngineError):
    def __init__(self, job_id: str, reason: str) -> None:
        super().__init__(f"Cannot abort `{job_id}`: {reason}")
        self.job_id = job_id
        self.reason = reason


class WrongGateKind(EngineError):
    """A confirm on an approval gate, or an approve on a confirm gate."""

    def __init__(self, job_id: str, gate_id: str) -> None:
        super().__init__(f"That button does not apply to the open request of `{job_id}`.")
        self.job_id = job_id
        self.gate_id = gate_id


class OutsideWindow(EngineError):
    """Logins may only be disabled inside the cluster's maintenance window; the request
    stays open for the next window (or an abort)."""

    def __init__(self, job_id: str, cluster: str, window: str, now: str, opens: str) -> None:
        super().__init__(
            f"Not now: it is {now}, outside the maintenance window of {cluster} ({window}), "
            f"and user logins are only disabled inside it. Job `{job_id}` waits with nothing "
            f"changed; approve this request when the window opens ({opens}), or abort the job."
        )
        self.job_id = job_id
        self.cluster = cluster
