"""Change records: what one job did, who decided what and when, for the change ticket.

- `record`: `build_record`, the JSON form (`SCHEMA`, documented in the README).
- `markdown`: `to_markdown`, the same as Markdown (the file `/pps report` uploads).
- `change_record`: reads the job and its audit entries from the store and builds both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from jobs.report.markdown import to_markdown
from jobs.report.record import SCHEMA, build_record
from jobs.rules.model import Job


class AuditedJobs(Protocol):
    """The reads a change record needs (`jobs.store.job_store.JobStore`)."""

    async def get(self, job_id: str) -> Job | None: ...

    async def audit_entries(self, job_id: str | None = None) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class ChangeRecord:
    job: Job
    data: dict[str, Any]

    @property
    def markdown(self) -> str:
        return to_markdown(self.data)

    @property
    def filename(self) -> str:
        return f"change-record-{self.job.id}-{self.job.cluster}.md"


async def change_record(store: AuditedJobs, job_id: str, now: float) -> ChangeRecord | None:
    """The change record of `job_id`, or None when there is no such job."""
    job = await store.get(job_id)
    if job is None:
        return None
    audit = await store.audit_entries(job_id)
    return ChangeRecord(job, build_record(job, audit, now))


__all__ = ["SCHEMA", "AuditedJobs", "ChangeRecord", "build_record", "change_record",
           "to_markdown"]
