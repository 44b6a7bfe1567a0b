"""Every `/pps` branch over real HTTP to the bot (real Redis, no worker: jobs stay queued)."""

from __future__ import annotations

import re
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError

from jobs.rules.model import State
from tests.slack.slack_stack import StackFactory

JOB_IN_CODE = re.compile(r"`([A-Za-z0-9-]{1,24})`")
CMD_CHANNEL, PPS_CHANNEL, EAST_CHANNEL = "C_CMD", "C_PPS", "C_EAST"


def job_id_of(text: str) -> str:
    m = JOB_IN_CODE.search(text)
    assert m, f"no job id in inline code in {text!r}"
    return m.group(1)


async def test_slack_upgrade_acks_with_job_id_and_picks_the_channel(stack: StackFactory) -> None:
    st = await stack()
    text = await st.ack_text("upgrade cluster-east")
    jid = job_id_of(text)
    assert "queued for cluster-east → 9.1R18" in text  # newest catalogue version
    job = await st.job(jid)
    assert (job.cluster, job.target, job.requester) == ("cluster-east", "9.1R18", "U_REQUESTER")
    assert job.channel == EAST_CHANNEL  # the cluster's own channel wins
    lab = await st.job(job_id_of(await st.ack_text("upgrade lab 9.1R17")))
    assert lab.channel == PPS_CHANNEL and lab.target == "9.1R17"


async def test_slack_card_goes_to_command_channel_without_any_other(stack: StackFactory) -> None:
    st = await stack(PPS_CHANNEL="")
    job = await st.job(job_id_of(await st.ack_text("upgrade lab", channel="C_HERE")))
    assert job.channel == "C_HERE"


async def test_slack_repeated_trigger_id_creates_no_second_job(stack: StackFactory) -> None:
    st = await stack()
    first = await st.ack_text("upgrade lab", trigger_id="111.222.abc")
    again = await st.ack_text("upgrade lab", trigger_id="111.222.abc")
    assert job_id_of(first) == job_id_of(again)
    assert "no second job" in again
    assert len(await st.job_ids()) == 1


async def test_slack_busy_cluster_refused_naming_job_and_requester(stack: StackFactory) -> None:
    st = await stack()
    jid = job_id_of(await st.ack_text("upgrade lab"))
    text = await st.ack_text("upgrade lab", user="U_APPROVER1")
    assert f"`{jid}`" in text and "<@U_REQUESTER>" in text and "already has an active job" in text
    assert await st.job_ids() == [jid]


async def test_slack_unknown_cluster_or_version_refused(stack: StackFactory) -> None:
    st = await stack()
    assert "Unknown cluster 'nowhere'" in await st.ack_text("upgrade nowhere")
    text = await st.ack_text("upgrade lab 9.1R99")
    assert "9.1R99 is not in the firmware catalogue" in text and "9.1R18" in text
    assert await st.job_ids() == []


async def test_slack_injection_attempt_is_echoed_escaped(stack: StackFactory) -> None:
    st = await stack()
    resp = await st.command("upgrade <!channel>")
    assert resp.status_code == 200
    body = resp.json()
    raw = resp.text
    assert body["response_type"] == "ephemeral"
    assert "&lt;!channel&gt;" in raw
    assert "<!channel>" not in raw
    assert "Usage" in raw
    assert await st.job_ids() == []


async def test_slack_at_hhmm_is_read_in_the_window_zone(stack: StackFactory) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    # A daily window: the next 01:30 is always inside it (an `--at` outside is refused).
    st = await stack(east_extra={"window": "01:00-05:00 Europe/Berlin"})
    job = await st.job(job_id_of(await st.ack_text("upgrade cluster-east --at 01:30")))
    assert job.state is State.SCHEDULED and job.scheduled_at is not None
    local = datetime.fromtimestamp(job.scheduled_at, ZoneInfo("Europe/Berlin"))
    assert (local.hour, local.minute) == (1, 30)
    assert 0 < job.scheduled_at - job.created_at <= 86400


async def test_slack_bad_input_gets_usage_never_an_error(stack: StackFactory) -> None:
    st = await stack()
    for text in ("frobnicate", "upgrade", "abort", "upgrade lab --at 99:99", "status a b",
                 "upgrade lab --bogus", "history <script>", "x" * 700):
        resp = await st.command(text)
        assert resp.status_code == 200, text
        body = resp.json()
        assert body["response_type"] == "ephemeral"
        assert "Traceback" not in resp.text
        assert "Usage" in resp.text or "usage" in resp.text, text
    assert await st.job_ids() == []


async def test_slack_help_lists_every_command(stack: StackFactory) -> None:
    st = await stack()
    text = await st.ack_text("help")
    for verb in ("upgrade", "status", "list", "abort", "history", "clusters", "help"):
        assert f"/pps {verb}" in text
    assert "<cluster>" not in text and "&lt;cluster&gt;" in text


async def test_slack_at_schedules_and_dry_run_is_marked(stack: StackFactory) -> None:
    st = await stack()
    text = await st.ack_text("upgrade lab --at 2099-01-01T00:00")
    assert "is more than 31 days ahead" in text
    text = await st.ack_text("upgrade lab --at 23:59")
    jid = job_id_of(text)
    job = await st.job(jid)
    assert job.state is State.SCHEDULED and job.scheduled_at is not None
    assert "scheduled for lab" in text
    dry = await st.ack_text("upgrade cluster-east --dry-run")
    assert "Dry run" in dry and "nothing changes" in dry
    assert (await st.job(job_id_of(dry))).dry_run is True


async def test_slack_status_list_history_clusters(stack: StackFactory) -> None:
    st = await stack()
    jid = job_id_of(await st.ack_text("upgrade cluster-east"))
    for text in (await st.ack_text("status"), await st.ack_text("list")):
        assert "Active and scheduled jobs" in text and f"`{jid}`" in text
    text = await st.ack_text("status cluster-east")
    assert f"busy with `{jid}`" in text and "<@U_REQUESTER>" in text
    assert "has no active job" in await st.ack_text("status lab")
    text = await st.ack_text(f"status {jid}")
    assert f"`{jid}`" in text and "Current step: 1/11 Preflight checks" in text
    assert "No job or cluster named `J-9999`" in await st.ack_text("status J-9999")
    text = await st.ack_text("clusters")
    assert "*cluster-east* · active-passive" in text and "*lab* · standalone" in text
    assert "• *east-a* — not read yet" in text and "• *east-b* — not read yet" in text
    assert f"▶️ `{jid}` → 9.1R18: ⏳ queued at 1/11 Preflight checks" in text
    assert "No jobs yet on lab." in await st.ack_text("history lab")


async def test_slack_abort_cancels_and_history_shows_it(stack: StackFactory) -> None:
    st = await stack()
    jid = job_id_of(await st.ack_text("upgrade lab"))
    text = await st.ack_text(f"abort {jid}")
    assert f"Job `{jid}` cancelled" in text
    assert (await st.job(jid)).state is State.CANCELLED
    assert "already cancelled" in await st.ack_text(f"abort {jid}")
    assert "No job `J-9999`" in await st.ack_text("abort J-9999")
    assert "No active or scheduled jobs" in await st.ack_text("status")
    text = await st.ack_text("history")
    assert f"`{jid}`" in text and "cancelled" in text
    assert f"`{jid}`" in await st.ack_text("history lab")
    # the cluster is free again
    assert job_id_of(await st.ack_text("upgrade lab")) != jid


async def test_slack_operators_limit_upgrade_and_abort(stack: StackFactory) -> None:
    st = await stack(PPS_OPERATORS="U_APPROVER1")
    assert "Only operators" in await st.ack_text("upgrade lab")
    jid = job_id_of(await st.ack_text("upgrade lab", user="U_APPROVER1"))
    assert "Only operators" in await st.ack_text(f"abort {jid}", user="U_STRANGER")
    assert (await st.job(jid)).state is State.QUEUED
    # anyone may still look
    assert f"`{jid}`" in await st.ack_text("status", user="U_STRANGER")


async def test_slack_operator_group_from_cache_on_the_ack_path(stack: StackFactory) -> None:
    st = await stack(PPS_OPERATORS="S_APPROVERS")
    cache = st.keys.cache("usergroup:S_APPROVERS")
    await st.wait_for(lambda: st.redis.exists(cache), what="startup group refresh")
    await st.redis.delete(cache)
    calls = len(st.store.calls_of("usergroups.users.list"))
    # cold cache: no Web API call on the ack path; a background refresh starts instead
    assert "could not check the operator group" in await st.ack_text("upgrade lab",
                                                                     user="U_APPROVER2")
    await st.wait_for(lambda: st.redis.exists(cache), what="background refresh")
    assert len(st.store.calls_of("usergroups.users.list")) == calls + 1
    assert "queued for lab" in await st.ack_text("upgrade lab", user="U_APPROVER2")
    assert "Only operators" in await st.ack_text("upgrade cluster-east", user="U_STRANGER")


async def test_slack_redis_trouble_is_a_message_not_a_5xx(stack: StackFactory) -> None:
    st = await stack()

    async def broken(*args: Any, **kw: Any) -> Any:
        raise RedisConnectionError("Connection refused")

    st.service.list_active = broken
    resp = await st.command("list")
    assert resp.status_code == 200
    assert "Something went wrong on my side" in resp.text
    assert "Traceback" not in resp.text and "Connection refused" not in resp.text


async def test_slack_upgrade_with_no_worker_running_says_so(stack: StackFactory) -> None:
    """A queued job with no worker would wait silently: the ack and `/pps list` warn."""
    st = await stack()  # no worker
    text = await st.ack_text("upgrade lab")
    assert "queued for lab" in text and "No worker is running" in text
    assert re.findall(r"`([^`]*)`", text) == [job_id_of(text)]  # the only inline code
    assert "No worker is running" in await st.ack_text("list")


async def test_slack_upgrade_with_a_worker_running_has_no_warning(stack: StackFactory) -> None:
    st = await stack(worker=True)

    async def one_worker() -> bool:  # /healthz reports the count once the worker is seen
        return bool((await st.http.get(st.bot_url + "/healthz")).json().get("workers") == 1)

    await st.wait_for(one_worker, what="the worker to announce itself")
    metrics = (await st.http.get(st.bot_url + "/metrics")).text
    assert "pps_workers_alive 1.0" in metrics
    text = await st.ack_text("upgrade cluster-east --dry-run")
    assert "queued for cluster-east" in text and "No worker is running" not in text
