"""Where commands and clicks may come from: `PPS_ALLOWED_CHANNELS` (unset: any channel) and
the installed workspace (auth.test's team). A request from elsewhere gets an ephemeral
refusal and changes nothing."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from handlers.origin import OTHER_TEAM, UNKNOWN_TEAM, OriginPolicy, origin_problems
from jobs.config.inventory import parse_inventory
from jobs.config.settings import Settings
from jobs.rules.model import State, Step
from sim.slack.signing import block_actions_body, block_actions_payload, slash_command_body

StackFactory = Any
A1 = "U_APPROVER1"


async def _command_from(st: Any, text: str, *, channel: str, team: str) -> Any:
    body = slash_command_body(user_id="U_REQUESTER", channel_id=channel, text=text,
                              response_url=f"{st.standin_url}/_standin/response/none",
                              team_id=team)
    return await st.signer.send(st.http, body)


async def _click_from(st: Any, user: str, msg: Any, action_id: str, *, channel: str,
                      team: str) -> Any:
    button = next(el for b in msg.blocks if b.get("type") == "actions"
                  for el in b["elements"] if el.get("action_id") == action_id)
    payload = block_actions_payload(
        user_id=user, channel_id=channel, message=msg.slack_shape(), action_id=action_id,
        value=button["value"], response_url=f"{st.standin_url}/_standin/response/none",
        team_id=team)
    return await st.signer.send(st.http, block_actions_body(payload))


async def test_slack_commands_only_from_allowed_channels(stack: StackFactory) -> None:
    st = await stack(PPS_ALLOWED_CHANNELS="C_CMD, C_PPS")
    resp = await _command_from(st, "upgrade lab", channel="C_RANDOM", team="T0STANDIN")
    assert resp.status_code == 200
    body = resp.json()
    assert body["response_type"] == "ephemeral"
    assert "work only in <#C_CMD>, <#C_PPS>" in resp.text
    assert await st.job_ids() == []
    assert "queued for lab" in await st.ack_text("upgrade lab")  # C_CMD is allowed


async def test_slack_clicks_only_from_allowed_channels_and_the_installed_team(
    stack: StackFactory,
) -> None:
    st = await stack(worker=True, PPS_ALLOWED_CHANNELS="C_CMD,C_PPS")
    jid = await st.start_job()
    msg = await st.gate(jid)
    elsewhere = copy.deepcopy(msg)
    elsewhere.channel = "C_RANDOM"
    resp = await _click_from(st, A1, elsewhere, "pps_approve", channel="C_RANDOM",
                             team="T0STANDIN")
    assert resp.status_code == 200
    refusal = await st.ephemeral_containing(A1, "work only in")
    assert refusal.channel == "C_RANDOM"
    resp = await _click_from(st, A1, msg, "pps_approve", channel=msg.channel, team="T_OTHER")
    assert resp.status_code == 200
    await st.ephemeral_containing(A1, "one workspace only")
    job = await st.job(jid)
    assert (job.state, job.step, job.approvals) == (State.AWAITING_APPROVAL,
                                                    Step.GATE_DISABLE, [])
    await st.click(A1, msg, "pps_approve")  # from its own channel and team: counts

    async def approved() -> bool:
        return bool((await st.job(jid)).approvals)
    await st.wait_for(approved, what="the approval from the allowed channel")


async def test_slack_commands_from_another_workspace_are_refused(stack: StackFactory) -> None:
    st = await stack()  # no channel limit: any channel of the installed workspace
    resp = await _command_from(st, "upgrade lab", channel="C_ANY", team="T_OTHER")
    assert resp.status_code == 200 and resp.json()["response_type"] == "ephemeral"
    assert "one workspace only" in resp.text
    assert await st.job_ids() == []
    resp = await _command_from(st, "help", channel="C_ANY", team="T0STANDIN")
    assert "/pps upgrade" in resp.text


def test_origin_policy_fails_closed_until_the_team_is_known(tmp_path: Path) -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert OriginPolicy(settings, lambda: None).refusal("T1", "C1") == UNKNOWN_TEAM
    policy = OriginPolicy(settings, lambda: "T1")
    assert policy.refusal("T1", "C_ANY") is None
    assert policy.refusal(None, "C_ANY") == OTHER_TEAM


def test_origin_problems_name_progress_channels_left_out(tmp_path: Path) -> None:
    def cluster(**kw: Any) -> dict[str, Any]:
        return {"mode": "standalone", "username_env": "U", "password_env": "P",
                "nodes": [{"name": f"n-{len(kw)}", "url": "https://n.invalid"}], **kw}

    inv = parse_inventory({  # cluster-east posts to C_EAST, lab to PPS_CHANNEL
        "clusters": {"cluster-east": cluster(channel="C_EAST"), "lab": cluster()},
        "firmware": [{"version": "9.1R18", "file": "p.pkg", "sha256": "0" * 64}],
    }, tmp_path, env={}, check_files=False, check_env=False)
    limited = Settings(_env_file=None, PPS_CHANNEL="C_PPS",  # type: ignore[call-arg]
                       PPS_ALLOWED_CHANNELS="C_CMD,C_PPS")
    problems = origin_problems(limited, inv)
    assert len(problems) == 1 and "cluster-east" in problems[0] and "C_EAST" in problems[0]
    unlimited = Settings(_env_file=None, PPS_CHANNEL="C_PPS")  # type: ignore[call-arg]
    assert origin_problems(unlimited, inv) == []
