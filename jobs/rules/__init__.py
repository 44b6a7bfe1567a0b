"""The engine's rules: pure functions and data, no I/O (nothing here imports redis or httpx).

- `model`: `Job` (the `job:{id}` hash), `State`, `Step` (the step kinds), gates, decisions.
- `events`: the job events the notifier turns into Slack messages.
- `errors`: `EngineError` and the refusals a user can cause.
- `change`: `Change`, what commits atomically with a job write (events, audit, timers, work).
- `timer_names`: durable timer kinds and member names.
- `transitions`: how a step's result moves a job (`start_step`, `apply_result`, `remind`).
- `decisions`: human decisions (`approve`, `reject`, `confirm`, `abort`).
- `gate_wait`: reminders and the timeout at an unanswered disable gate.
- `escalation`: on-call called when logins stay off too long while a human is awaited.

The step table of each procedure is in `jobs.procedures`.
"""

from jobs.rules.change import Change
from jobs.rules.errors import EngineError
from jobs.rules.events import Event, EventKind
from jobs.rules.model import (
    ACTIVE_STATES,
    TERMINAL_STATES,
    Decision,
    Gate,
    GateKind,
    Job,
    State,
    Step,
    StepRecord,
    StepStatus,
)

__all__ = [
    "ACTIVE_STATES",
    "TERMINAL_STATES",
    "Change",
    "Decision",
    "EngineError",
    "Event",
    "EventKind",
    "Gate",
    "GateKind",
    "Job",
    "State",
    "Step",
    "StepRecord",
    "StepStatus",
]
