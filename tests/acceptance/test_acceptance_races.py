"""What Slack and people do at the same moment: simultaneous upgrades of one cluster, a
command delivered twice, two approvers clicking together, a click re-delivered."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.acceptance.acceptance_stack import JOB_ID, job_id_in, wait_until
from tests.fakes import blob

Stack = Any
REQ, A1, A2 = "U0REQ", "U0APPR1", "U0APPR2"


def test_acceptance_simultaneous_upgrades_make_one_job(stack: Stack) -> None:
    users = [f"U0OPS{i}" for i in range(6)]
    # Scheduled a day ahead, the job holds the cluster through all six requests (a dry run
    # started at once may finish in between: then a later request rightly makes a new job).
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 86400))
    bodies = [stack.command_body(u, f"upgrade lab11 --dry-run --at {at}") for u in users]
    with ThreadPoolExecutor(len(bodies)) as pool:
        acks = list(pool.map(lambda b: stack.post_signed(b), bodies))
    assert all(a.status_code == 200 for a in acks)
    texts = [blob(a.json()) for a in acks]
    ids = {m.group(1) for t in texts for m in JOB_ID.finditer(t)}
    assert len(ids) == 1, texts  # every refusal names the one job that was made
    jid = ids.pop()
    stack.command(REQ, f"abort {jid}")
    stack.card_in(jid, "cancelled")
    assert blob(stack.command(REQ, "history lab11")).count("J-") == 1


def test_acceptance_command_delivered_twice_makes_one_job(stack: Stack) -> None:
    body = stack.command_body(REQ, "upgrade lab12 --dry-run")
    first = stack.post_signed(body).json()
    second = stack.post_signed(body).json()
    jid = job_id_in(first)
    assert job_id_in(second) == jid
    stack.card_in(jid, "succeeded")
    assert blob(stack.command(REQ, "history lab12")).count("J-") == 1


def test_acceptance_two_approvers_at_once_one_decision(stack: Stack) -> None:
    jid = stack.upgrade(REQ, "upgrade lab13")
    gate = stack.open_gate(jid, 1)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda u: stack.click(u, gate, "pps_approve"), [A1, A2, A1, A2]))
    enable = stack.open_gate(jid, 2)
    # One click delivered twice (same body): handled once, one refusal for the stranger.
    twice = stack.click_body("U0STRANGER2", enable, "pps_reject")
    assert stack.post_signed(twice).status_code == 200
    assert stack.post_signed(twice).status_code == 200
    stack.ephemeral_for("U0STRANGER2", "Only")
    time.sleep(0.5)
    assert len([e for e in stack.slack.snapshot()[2] if e.user == "U0STRANGER2"]) == 1
    _, _, eph = stack.slack.snapshot()
    refused = [e for e in eph if "Already decided" in e.text + blob(e.blocks)
               and e.user in (A1, A2)]
    assert refused, "the losing click was not told why"
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda u: stack.click(u, enable, "pps_approve"), [A1, A2, A1]))
    stack.card_in(jid, "succeeded")
    writes = stack.writes("lab13")
    assert writes.count("install") == 1, writes
    assert writes.count("login_permission") == 2, writes  # one disable, one enable
    card = stack.card(jid)
    decided = [m for m in stack.thread(card) if "approved:" in m.text]
    assert len(decided) == 2, [m.text for m in decided]


def test_acceptance_worker_killed_mid_upgrade_job_finishes(stack: Stack) -> None:
    stack.configure("lab15", {"knobs": {"reboot_seconds": 1.0}})
    jid = stack.upgrade(REQ, "upgrade lab15")
    stack.click(A1, stack.open_gate(jid, 1), "pps_approve")
    wait_until("the install", lambda: "install" in stack.writes("lab15"), 10)
    victim = stack.procs["worker1"]
    victim.kill()  # SIGKILL: no chance to release anything
    victim.wait(5)
    try:
        stack.click(A2, stack.open_gate(jid, 2, timeout=30), "pps_approve")
        stack.card_in(jid, "succeeded")
        assert stack.writes("lab15").count("install") == 1
    finally:
        stack.start("worker1", "worker", "--name", "acc-w1b")
