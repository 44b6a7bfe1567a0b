"""PPS_TWO_PERSON_RULE=false, and a Slack that does not implement users.info."""

from __future__ import annotations

from typing import Any

Stack = Any
REQ = "U0REQ"
TARGET = "9.1R18 (build 29865)"


def test_acceptance_requester_may_approve_when_rule_is_off(lenient_stack: Stack) -> None:
    st = lenient_stack
    jid = st.upgrade(REQ, "upgrade solo")  # U0REQ is an approver through S0APPRS
    gate = st.open_gate(jid, 1)
    st.click("U0STRANGER", gate, "pps_reject")  # minimal payload: channel from container
    st.ephemeral_for("U0STRANGER", "Only")
    st.click(REQ, gate, "pps_approve")
    st.click(REQ, st.open_gate(jid, 2), "pps_approve")
    st.card_in(jid, "succeeded")
    state = st.sim_state("solo")
    assert state["nodes"][0]["build"] == TARGET and state["login_permission"] is True
    calls, _, eph = st.slack.snapshot()
    assert not [e for e in eph if e.user == REQ], [e.text for e in eph]
    assert [e.channel for e in eph] == [gate.channel]
    # users.info is not implemented here; whatever the bot asked of it, it got along.
    assert all(c.ok for c in calls if c.method != "users.info"), \
        [(c.method, c.error) for c in calls if not c.ok]
    # PPS_BACKUP_DIR unset: backups land in ./backups of the worker's working directory.
    assert list((st.tmp / "backups" / "solo" / jid).glob("*.cfg"))


def test_acceptance_reused_trigger_id_still_makes_new_jobs(lenient_stack: Stack) -> None:
    """This fake sends the same trigger_id with every command: a different command is a
    different request and gets its own job (the same command again at once is taken for a
    re-delivery and answered with the job it made)."""
    st = lenient_stack
    st.upgrade(REQ, "upgrade solo --dry-run")  # a job made under the same trigger id
    first = st.upgrade(REQ, "upgrade solo2 --dry-run")
    assert st.card_in(first, "succeeded").payload["cluster"] == "solo2"
    again = st.command(REQ, "upgrade solo2 --dry-run")
    assert f"`{first}`" in again["text"] and f"<@{REQ}>" in again["text"], again
    st.card_in(first, "succeeded")
    second = st.upgrade(REQ, "upgrade solo2 9.1R18 --dry-run")
    assert second != first
    assert st.card_in(second, "succeeded").payload["cluster"] == "solo2"
