"""What a `/pps` command may cost (issue 9, item 7), over real HTTP to the bot: an unknown
cluster is refused at once, and each user's upgrade requests (dry runs included) are
rate-limited with a clear ephemeral."""

from __future__ import annotations

import re
from typing import Any

StackFactory = Any
JOB_IN_CODE = re.compile(r"`(J-[A-Za-z0-9-]{1,22})`")


def job_id_of(text: str) -> str:
    m = JOB_IN_CODE.search(text)
    assert m, f"no job id in inline code in {text!r}"
    return m.group(1)


async def test_slack_history_of_an_unknown_cluster_is_refused_naming_the_known_ones(
    stack: StackFactory,
) -> None:
    st = await stack()
    text = await st.ack_text("history nowhere")
    assert text.startswith("⛔") and "Unknown cluster 'nowhere'" in text
    assert "cluster-east, lab" in text
    assert "Unknown cluster 'elsewhere'" in await st.ack_text("upgrade elsewhere --dry-run")
    assert await st.job_ids() == []
    assert "No jobs yet on lab." in await st.ack_text("history lab")


async def test_slack_upgrade_requests_are_rate_limited_per_user_dry_runs_included(
    stack: StackFactory,
) -> None:
    st = await stack(PPS_USER_UPGRADES_PER_HOUR=2)
    first = job_id_of(await st.ack_text("upgrade lab --dry-run"))
    # Refused requests create nothing and do not count.
    assert "already has an active job" in await st.ack_text("upgrade lab")
    assert "not in the firmware catalogue" in await st.ack_text("upgrade lab 9.1R99")
    second = job_id_of(await st.ack_text("upgrade cluster-east --dry-run"))
    await st.service.abort(first, "U_REQUESTER")  # lab is free again: only the limit remains
    text = await st.ack_text("upgrade lab --dry-run")
    assert text.startswith("⛔") and "2 upgrade requests in the last hour" in text
    assert "dry runs count too" in text and "PPS_USER_UPGRADES_PER_HOUR" in text
    assert re.search(r"ask again at \d{4}-\d\d-\d\d \d\d:\d\d UTC "
                     r"\(in about (59 min|1 h 00 min)\)", text), text
    assert "`" not in text  # no inline code: nothing that looks like a job id
    assert sorted(await st.job_ids()) == sorted([first, second])
    # Someone else is not limited by it.
    other = job_id_of(await st.ack_text("upgrade lab --dry-run", user="U_OTHER"))
    assert (await st.job(other)).requester == "U_OTHER"


async def test_slack_a_redelivered_command_is_not_counted_twice(stack: StackFactory) -> None:
    st = await stack(PPS_USER_UPGRADES_PER_HOUR=1)
    first = await st.ack_text("upgrade lab", trigger_id="42.42.abc")
    again = await st.ack_text("upgrade lab", trigger_id="42.42.abc")
    assert job_id_of(first) == job_id_of(again) and "no second job" in again
    assert "1 upgrade requests in the last hour" in await st.ack_text("upgrade cluster-east")
