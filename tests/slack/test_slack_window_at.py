"""`--at` and the maintenance window (issue 9, item 11), over real HTTP to the bot: a start
time outside the cluster's window is refused when the command is given."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from jobs.rules.model import State

StackFactory = Any
JOB_IN_CODE = re.compile(r"`(J-[A-Za-z0-9-]{1,22})`")
BERLIN = ZoneInfo("Europe/Berlin")


def job_id_of(text: str) -> str:
    m = JOB_IN_CODE.search(text)
    assert m, f"no job id in inline code in {text!r}"
    return m.group(1)


def _next_saturday(hour: int) -> datetime:
    now = datetime.now(BERLIN)
    day = now.date() + timedelta(days=(5 - now.weekday()) % 7)
    when = datetime(day.year, day.month, day.day, hour, 30, tzinfo=BERLIN)
    return when if when > now else when + timedelta(days=7)


async def test_slack_an_at_time_outside_the_window_is_refused_at_once(
    stack: StackFactory,
) -> None:
    st = await stack(east_extra={"window": "Sat 01:00-05:00 Europe/Berlin"})
    outside = _next_saturday(6).isoformat()
    text = await st.ack_text(f"upgrade cluster-east --at {outside}")
    assert text.startswith("⛔") and "outside the maintenance window of cluster-east" in text
    assert "Sat 01:00-05:00 Europe/Berlin" in text and "next opens Sat" in text
    assert await st.job_ids() == []
    inside = _next_saturday(2)
    job = await st.job(job_id_of(await st.ack_text(f"upgrade cluster-east --at "
                                                   f"{inside.isoformat()}")))
    assert job.state is State.SCHEDULED and job.scheduled_at == inside.timestamp()
    # Clusters without a window take any time.
    lab = await st.job(job_id_of(await st.ack_text(f"upgrade lab --at {outside}")))
    assert lab.state is State.SCHEDULED
