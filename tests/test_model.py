"""The job record round-trips through its Redis hash form; step list facts hold."""

from __future__ import annotations

from jobs.procedures import UPGRADE
from jobs.rules.model import Decision, Gate, GateKind, Job, State, Step, StepRecord, StepStatus


def test_step_list_is_the_eleven_steps_in_order() -> None:
    assert len(UPGRADE.steps) == 11
    assert UPGRADE.index(Step.PREFLIGHT) == 1
    assert UPGRADE.index(Step.DISABLE_LOGINS) == 5
    assert UPGRADE.index(Step.INSTALL) == 6
    assert UPGRADE.index(Step.VERIFY) == 11
    assert UPGRADE.next(Step.SETTLE) is Step.GATE_ENABLE
    assert UPGRADE.next(Step.VERIFY) is None


def test_job_hash_round_trip_keeps_every_field() -> None:
    job = Job(id="J-0001", cluster="cluster-east", target="9.1R18", requester="U1")
    job.state = State.AWAITING_APPROVAL
    job.step = Step.GATE_DISABLE
    job.scheduled_at = 1.5
    job.logins_disabled = True
    job.outputs = {"builds_before": {"east-a": "9.1R17 (build 1)"}}
    job.approvals = [{"user": "U2", "decision": "approved"}]
    job.set_step_record(Step.PREFLIGHT, StepRecord(StepStatus.DONE, 1.0, 3.5, "ok"))
    gate = Gate("G01-abcdef", GateKind.APPROVAL, Step.GATE_DISABLE, opened_at=4.0)
    job.gates[gate.id] = gate.to_dict()

    h = job.to_hash()
    assert all(isinstance(v, str) for v in h.values())
    back = Job.from_hash({k.encode(): v.encode() for k, v in h.items()})
    assert back == job
    assert back.step_record(Step.PREFLIGHT).duration == 2.5
    assert back.open_gate() == gate
    assert back.finished_at is None


def test_latest_gate_orders_by_opening() -> None:
    job = Job(id="J-0002", cluster="c", target="9.1R18", requester="U1")
    old = Gate("G01-aaaaaa", GateKind.APPROVAL, Step.GATE_ENABLE, 5.0, Decision.REJECTED, "U2")
    new = Gate("G02-000000", GateKind.APPROVAL, Step.GATE_ENABLE, 5.0)
    for g in (new, old):
        job.gates[g.id] = g.to_dict()
    back = Job.from_hash(job.to_hash())
    assert back.latest_gate(Step.GATE_ENABLE) == new
    assert back.latest_gate(Step.GATE_ENABLE, GateKind.CONFIRM) is None
    assert not back.settled
    back.state = State.FAILED
    assert back.settled
    back.logins_disabled = True
    assert not back.settled
