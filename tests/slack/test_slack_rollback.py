"""`/pps rollback` through Slack: the grammar, the ack, the same lock, authorization and
two-person rule as an upgrade, and a whole rollback whose card, gates and summary say
"rollback" (real HTTP to the bot, the Slack stand-in, an in-process worker on a fake)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from bot.render.card import card
from bot.render.commands import render_reply
from bot.render.common import job_line
from bot.render.gates import approval_request
from bot.render.summary import final_summary
from handlers import grammar
from handlers.replies import Queued
from jobs.rules.model import Job, State, Step

StackFactory = Any
REQ, A1, A2 = "U_REQUESTER", "U_APPROVER1", "U_APPROVER2"
BACK = "9.1R16 (build 26213)"  # the fake cluster's rollback partition
JOB_IN_CODE = re.compile(r"`([A-Za-z0-9-]{1,24})`")


def job_id_of(text: str) -> str:
    m = JOB_IN_CODE.search(text)
    assert m, f"no job id in inline code in {text!r}"
    return m.group(1)


def texts(msgs: list[Any]) -> str:
    return "\n".join(m.text + json.dumps(m.blocks, ensure_ascii=False) for m in msgs)


# -- grammar (pure) -------------------------------------------------------------------------


def test_grammar_parses_rollback_and_its_options() -> None:
    assert grammar.parse("rollback lab") == grammar.Rollback("lab")
    assert grammar.parse("ROLLBACK lab --dry-run --at 01:30") == grammar.Rollback(
        "lab", "01:30", True
    )
    assert "/pps rollback <cluster> [--at <time>] [--dry-run]" in grammar.USAGE_LINES


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("rollback", "Which cluster? `rollback`"),
        ("rollback lab 9.1R16", "Unexpected `9.1R16`"),
        ("rollback lab --allow-downgrade", "`--allow-downgrade` is for `upgrade`"),
        ("rollback lab --force", "Unknown option `--force`"),
        ("rollback lab --at", "`--at` needs a time"),
        ("rollback <lab>", "is not a cluster name"),
    ],
)
def test_grammar_refuses_what_a_rollback_does_not_take(text: str, words: str) -> None:
    with pytest.raises(grammar.ParseError) as err:
        grammar.parse(text)
    assert words in err.value.problem
    assert err.value.usage == grammar.usage_of("rollback")


# -- rendering (pure) -----------------------------------------------------------------------


def test_render_says_rollback_before_and_after_preflight() -> None:
    job = Job(id="J-0007", cluster="lab", target="", requester=REQ, procedure="rollback")
    assert card(job).blocks[0]["text"]["text"].startswith("lab: rollback to the rollback build")
    assert "lab rollback → the rollback build" in job_line(job)
    ack = render_reply(Queued(job, True, "C_PPS"))
    assert "Rollback `J-0007` queued for lab → the rollback build." in ack.text
    job.target = BACK
    assert card(job).blocks[0]["text"]["text"].startswith(f"lab: rollback to {BACK}")
    gate = approval_request(job, "G01-abc", Step.GATE_DISABLE, {"summary": ["x"]})
    assert f"roll back to {BACK}?" in texts([gate]) and "install" not in texts([gate])
    done = final_summary(job, {"state": "succeeded", "summary": {}})
    assert done.blocks[0]["text"]["text"] == f"lab rolled back to {BACK}"
    failed = final_summary(job, {"state": "failed", "summary": {}})
    assert failed.blocks[0]["text"]["text"] == f"lab: rollback to {BACK} failed"
    upgrade = Job(id="J-0008", cluster="lab", target="9.1R18", requester=REQ)
    assert "Upgrade `J-0008` queued" in render_reply(Queued(upgrade, True, "C_PPS")).text
    assert "rollback" not in job_line(upgrade)


# -- commands over HTTP -----------------------------------------------------------------------


async def test_slack_rollback_acks_with_job_id_and_takes_the_cluster_lock(
    stack: StackFactory,
) -> None:
    st = await stack()
    text = await st.ack_text("rollback lab")
    jid = job_id_of(text)
    assert "Rollback" in text and "queued for lab → the rollback build" in text
    job = await st.job(jid)
    assert (job.procedure, job.target, job.cluster, job.requester) == (
        "rollback", "", "lab", REQ,
    )
    busy = await st.ack_text("upgrade lab", user=A1)  # one job per cluster, whatever it is
    assert f"`{jid}`" in busy and "already has an active job" in busy
    busy = await st.ack_text("rollback lab", user=A1)
    assert f"`{jid}`" in busy and await st.job_ids() == [jid]
    assert "Unknown cluster 'nowhere'" in await st.ack_text("rollback nowhere")
    assert "/pps rollback &lt;cluster&gt;" in await st.ack_text("help")


async def test_slack_rollback_schedules_dry_runs_and_refuses_non_operators(
    stack: StackFactory,
) -> None:
    st = await stack(PPS_OPERATORS="U_OPERATOR")
    refused = await st.ack_text("rollback lab")
    assert "⛔" in refused and await st.job_ids() == []
    text = await st.ack_text("rollback lab --at 23:59", user="U_OPERATOR")
    job = await st.job(job_id_of(text))
    assert job.state is State.SCHEDULED and "scheduled for lab" in text
    dry = await st.ack_text("rollback cluster-east --dry-run", user="U_OPERATOR")
    assert "Rollback dry run" in dry and "nothing changes" in dry
    assert (await st.job(job_id_of(dry))).dry_run is True
    bad = await st.ack_text("rollback lab --at 99:99", user="U_OPERATOR")
    assert "/pps rollback" in bad.replace("&lt;", "<")


async def test_slack_whole_rollback_card_gates_and_summary(stack: StackFactory) -> None:
    st = await stack(worker=True)
    jid = await st.start_job("rollback cluster-east")
    disable = await st.open_gate(jid, Step.GATE_DISABLE)
    assert f"roll back to {BACK}" in texts([disable])
    refused = await st.click(REQ, disable, "pps_approve")  # the two-person rule holds
    assert refused.status_code == 200
    assert (await st.job(jid)).open_gate() is not None
    await st.click(A1, disable, "pps_approve")
    await st.click(A2, await st.open_gate(jid, Step.GATE_ENABLE), "pps_approve")
    card_msg = await st.card_in(jid, "succeeded", summary="rolled back to")
    assert card_msg.blocks[0]["text"]["text"].startswith(f"cluster-east: rollback to {BACK}")
    body = texts(st.thread(card_msg))
    for expected in ("6/11 Roll back to the rollback partition: done",
                     f"cluster-east rolled back to {BACK}", "User logins were disabled for"):
        assert expected in body, expected
    fake = st.fakes["cluster-east"]
    assert fake.count("rollback") == 1 and fake.count("install") == 0
    assert all(fake.build_of(n) == BACK for n in fake.nodes)
