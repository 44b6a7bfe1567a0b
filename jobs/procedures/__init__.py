"""Procedures as data: each procedure is one table of steps (`spec.Procedure`), and the
engine, the plan, the card and the inventory's `manual:` names all derive from it.

- `spec`: `Procedure`, `StepSpec` (title, implementation, gate, side effect, manual name,
  logins at risk, what `/pps abort` does, plan note), `OnAbort`, `Logins`.
- `upgrade`: `UPGRADE`, the KB12940 upgrade.
- `rollback`: `ROLLBACK`, back to the rollback partitions' build (`/pps rollback`).

A job names its procedure (`job.procedure`); `procedure_for(job)` finds its table.
"""

from __future__ import annotations

from jobs.procedures.rollback import ROLLBACK
from jobs.procedures.spec import Logins, OnAbort, Procedure, StepSpec
from jobs.procedures.upgrade import UPGRADE
from jobs.rules.model import Job

PROCEDURES: dict[str, Procedure] = {p.name: p for p in (UPGRADE, ROLLBACK)}


def procedure_for(job: Job) -> Procedure:
    """The table of the job's procedure."""
    try:
        return PROCEDURES[job.procedure]
    except KeyError:
        raise ValueError(f"job {job.id} names an unknown procedure {job.procedure!r}") from None


def manual_names() -> tuple[str, ...]:
    """Every name the inventory's `manual:` list accepts, over all procedures, in table order."""
    names = (r.manual for p in PROCEDURES.values() for r in p.rows if r.manual)
    return tuple(dict.fromkeys(names))


__all__ = [
    "PROCEDURES",
    "ROLLBACK",
    "UPGRADE",
    "Logins",
    "OnAbort",
    "Procedure",
    "StepSpec",
    "manual_names",
    "procedure_for",
]
