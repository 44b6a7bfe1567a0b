"""The job record round-trips through its Redis hash form; step list facts hold."""

from __future__ import annotations

import json

import pytest

from jobs.procedures import UPGRADE
from jobs.rules.model import Decision, Gate, GateKind, Job, State, Step, StepRecord, StepStatus
from jobs.rules.outputs import InstallOut, Outputs, PreflightOut


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
    job.outputs = Outputs(builds_before={"east-a": "9.1R17 (build 1)"})
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


def test_outputs_of_an_older_bot_read_back_typed() -> None:
    """A job hash written before outputs were typed (flat JSON keys) reads back unchanged."""
    old = {
        "id": "J-0007", "cluster": "c1", "target": "9.1R18", "requester": "U1",
        "state": "waiting", "step": "settle",
        "outputs": json.dumps({
            "acting_node": "east-a",
            "builds_before": {"east-a": "9.1R17 (build 1)"},
            "disable_logins": {"enabled": False, "via": "the VIP", "by": "api", "at": 5.0},
            "install_sent_at": 7.0,
            "rejoined_at": 9.5,
            "evidence": {"G01-abcdef": {"sessions": 3}},
            "some_future_key": 1,
        }),
    }  # fmt: skip
    job = Job.from_hash(old)
    assert job.procedure == "upgrade"  # hashes from before procedures name none
    assert job.outputs.acting_node == "east-a"
    assert job.outputs.disable_logins is not None and job.outputs.disable_logins.by == "api"
    assert job.outputs.install_sent_at == 7.0 and job.outputs.rejoined_at == 9.5
    assert job.outputs.evidence_of("G01-abcdef") == {"sessions": 3}
    back = json.loads(job.to_hash()["outputs"])
    assert back["install_sent_at"] == 7.0 and "some_future_key" not in back
    assert "settled_at" not in back  # fields never set are not written


def test_a_step_output_sets_only_its_own_fields() -> None:
    job = Job(id="J-1", cluster="c1", target="9.1R18", requester="U1")
    job.outputs.merge(PreflightOut(acting_node="east-b"))
    job.outputs.merge(InstallOut(install_node="east-b", install_sent_at=3.0))
    assert job.outputs.dump() == {
        "acting_node": "east-b", "install_node": "east-b", "install_sent_at": 3.0,
    }  # fmt: skip
    with pytest.raises(ValueError):
        InstallOut.model_validate({"not_an_install_field": 1})
