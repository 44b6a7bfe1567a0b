"""Two `ppsbot bot` processes on one host (same environment, two ports) with two workers,
through concurrent upgrades: each bot's notifier is a consumer of its own, and between them
every job gets one card, every gate one message, and no thread message is posted twice."""

from __future__ import annotations

import collections
import subprocess
from collections.abc import Iterator

import httpx
import pytest
import redis

from tests.acceptance.acceptance_checks import slack_contract_problems
from tests.acceptance.acceptance_launch import launch, teardown
from tests.acceptance.acceptance_stack import FAST, Stack, wait_until
from tests.fakes import PPSBOT, REDIS_URL, free_port

REQ, A1, A2 = "U0REQ", "U0APPR1", "U0APPR2"
CLUSTERS = [f"twin{i}" for i in range(1, 7)]


@pytest.fixture(scope="module")
def twin_bots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, list[str]]]:
    """The usual stack (bot + two workers, reminders out of the way) plus a second bot."""
    sims = {c: {"mode": "standalone", "nodes": [f"{c}-1"], "knobs": dict(FAST)}
            for c in CLUSTERS}
    st = launch(tmp_path_factory.mktemp("acc-twins"), sims,
                channels={}, workers=2, users_info=True,
                extra_env={"PPS_TWO_PERSON_RULE": "true", "PPS_REMINDER_SECONDS": "600"})
    try:
        port = free_port()
        with (st.tmp / "bot2.log").open("wb") as out:
            st.procs["bot2"] = subprocess.Popen([str(PPSBOT), "bot"], cwd=st.tmp,
                                                env={**st.env, "PORT": str(port)},
                                                stdout=out, stderr=subprocess.STDOUT)
        second = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            assert st.procs["bot2"].poll() is None, st.logs()
            try:
                return httpx.get(second + "/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False
        wait_until("the second bot's /healthz", healthy, 20, 0.1)
        yield st, [st.bot_url, second]
    finally:
        teardown(st)


def _notifier_consumers(st: Stack) -> list[str]:
    r = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        return [str(c["name"]) for c in r.xinfo_consumers(f"{st.prefix}events", "notifier")]
    finally:
        r.close()


def test_acceptance_two_bots_on_one_host_post_everything_once(
    twin_bots: tuple[Stack, list[str]]
) -> None:
    st, urls = twin_bots
    first = st.bot_url
    jobs = []
    try:
        for i, cluster in enumerate(CLUSTERS):  # commands and clicks alternate between bots
            st.bot_url = urls[i % 2]
            jobs.append(st.upgrade(REQ, f"upgrade {cluster}"))
        for n in (1, 2):
            for i, jid in enumerate(jobs):
                st.bot_url = urls[(i + n) % 2]
                st.click((A1, A2)[i % 2], st.open_gate(jid, n), "pps_approve")
        for jid in jobs:
            st.card_in(jid, "succeeded", timeout=60)
    finally:
        st.bot_url = first
    consumers = _notifier_consumers(st)
    assert len(consumers) == 2 and len(set(consumers)) == 2, consumers
    assert all(name.startswith("bot-") for name in consumers), consumers
    problems = slack_contract_problems(st)  # one card per job, buttons and replies once
    assert not problems, "\n".join(problems)
    for jid in jobs:
        assert len(st.gate_messages(jid)) == 2, jid  # one message per gate
    calls, _, _ = st.slack.snapshot()
    replies = collections.Counter(
        (c.args.get("channel"), c.args.get("thread_ts"), c.args.get("text")) for c in calls
        if c.ok and c.method == "chat.postMessage" and c.args.get("thread_ts"))
    assert [k for k, n in replies.items() if n > 1] == []
    assert len(replies) >= 10 * len(jobs)  # every job's thread got its replies

