"""Reconciling the install (issue 9.5): when its answer is lost or unclear, read the acting
node and watch (started), keep reading (unknown, until the reboot deadline), or ask an
operator before sending it a second time (untouched). Never two installs without a human."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from jobs.rules.model import Decision, Step
from jobs.rules.outputs import InstallOut
from jobs.steps.base import Advance, AskOperator, Fail, Poll, StepResult
from jobs.steps.install_check import NodeSeen, Verdict, judge
from tests.fakes.harness import Harness

MakeHarness = Callable[..., Harness]
RUNNING = "9.1R17 (build 27583)"


async def at_install(h: Harness) -> Harness:
    """Preflight and record have run; logins are disabled; the job is at INSTALL."""
    h.apply(await h.run(Step.PREFLIGHT))
    h.job.outputs.merge((await h.run(Step.RECORD)).outputs)
    h.job.step = Step.INSTALL
    h.job.logins_disabled = True
    return h


def intent_only(h: Harness, node: str) -> float:
    """The intent was checkpointed, then the worker died: nothing reached the node."""
    at = h.clock.now()
    h.job.outputs.merge(InstallOut(install_sent_at=at, install_node=node))
    h.clock.advance(30)  # another worker takes the item over
    return at


async def until_not_poll(h: Harness, limit: int = 500) -> tuple[StepResult, list[Poll]]:
    polls: list[Poll] = []
    for _ in range(limit):
        result = await h.run()
        if not isinstance(result, Poll):
            return result, polls
        polls.append(result)
        h.apply(result)
        h.wait()
    raise AssertionError("still polling")


def installs(h: Harness) -> list[float]:
    return [c["at"] for c in h.fake.calls if c["method"] == "install"]


async def test_crash_after_the_intent_asks_before_the_only_send(make_harness: MakeHarness) -> None:
    h = await at_install(make_harness("active-passive", vip=True))
    sent_at = intent_only(h, "east-a")
    ask, polls = await until_not_poll(h)
    assert len(polls) == 2  # three untouched readings, a poll apart, before asking
    assert isinstance(ask, AskOperator), ask
    assert installs(h) == []  # never sent without a human
    assert ask.saw and ask.saw.startswith(f"east-a runs {RUNNING}, rollback 9.1R16")
    assert "Leader" in ask.saw and ask.saw.endswith("no sign of the install")
    assert "no clear answer to the install from east-a" in ask.reason
    assert "worker stopped during the upload" in ask.reason
    assert "send it again" in ask.instructions and "pps-9.1R18-package.pkg" in ask.instructions
    assert ask.detail and "send the install again?" in ask.detail  # the card's install line
    h.apply(ask)
    assert h.job.outputs.install_outcome == "untouched"
    h.decide_open(Decision.CONFIRMED, "UOPERATOR")
    confirmed_at = h.clock.now()
    done = await h.run()
    assert isinstance(done, Advance), done
    assert installs(h) == [confirmed_at]  # one install, after the confirm
    assert done.outputs.install_accepted_at >= sent_at
    h.apply(done)
    assert h.job.step is Step.WATCH_REBOOT
    again = [c for c in h.checkpoints if "install_confirm_used" in c]
    assert len(again) == 1 and again[0]["install_sent_at"] == confirmed_at


async def test_crash_after_the_upload_finds_the_install_under_way(
    make_harness: MakeHarness,
) -> None:
    h = await at_install(make_harness("active-active"))
    fw = h.inventory.firmware_for("9.1R18")
    assert fw is not None
    sent_at = h.clock.now()
    h.job.outputs.merge(InstallOut(install_sent_at=sent_at, install_node="aa-1"))
    await h.fake.install("aa-1", fw.file)  # it arrived; the worker died before the answer
    h.clock.advance(5)
    result = await h.run()
    assert isinstance(result, Advance), result
    assert "aa-1 runs 9.1R17" in result.detail and "Enabled, Transitioning" in result.detail
    assert result.detail.endswith("installing: watching")
    assert result.outputs.install_accepted_at == sent_at
    assert len(installs(h)) == 1


@pytest.mark.parametrize("status", [0, 502, 504], ids=["reset", "proxy-502", "proxy-504"])
async def test_lost_answer_while_the_upgrade_starts_is_read_not_resent(
    make_harness: MakeHarness, status: int
) -> None:
    h = await at_install(make_harness("active-passive", vip=True))
    h.fake.lose_answer("install", status)
    first = await h.run()
    assert isinstance(first, Poll), first  # before: 5xx was "refused" and failed the job
    assert first.progress and first.progress.startswith("No clear answer to the install")
    assert "not sent again" in first.progress
    h.apply(first)
    assert h.job.outputs.install_outcome == "unclear"
    h.wait()
    result, _ = await until_not_poll(h)
    assert isinstance(result, Advance), result
    assert "installing" in result.detail or "went through" in result.detail
    assert len(installs(h)) == 1


async def test_5xx_that_left_no_trace_asks_instead_of_failing(make_harness: MakeHarness) -> None:
    h = await at_install(make_harness("active-active"))
    h.fake.fail_next("install", 500)  # refused before anything started
    result, polls = await until_not_poll(h)
    assert isinstance(result, AskOperator), result
    assert "HTTP 500" in result.reason
    assert polls[0].progress and "HTTP 500" in polls[0].progress
    assert len(installs(h)) == 1


async def test_standalone_waits_a_third_of_the_deadline_before_asking(
    make_harness: MakeHarness,
) -> None:
    """A standalone node says nothing while it installs: only its reboot shows, later."""
    h = await at_install(make_harness("standalone"))
    sent_at = intent_only(h, "solo")
    ask, polls = await until_not_poll(h)
    assert isinstance(ask, AskOperator), ask
    assert h.clock.now() - sent_at >= 1800 / 3
    assert len(polls) >= 50  # every 10 s
    assert installs(h) == []


async def test_standalone_reboot_after_a_lost_answer_is_seen_as_started(
    make_harness: MakeHarness,
) -> None:
    h = await at_install(make_harness("standalone"))
    h.fake.lose_answer("install")
    start = h.clock.now()
    result, _ = await until_not_poll(h)
    assert isinstance(result, Advance), result
    assert "solo" in result.detail and "watching" in result.detail
    assert h.clock.now() - start < 1800 / 3  # its reboot was seen before anyone was asked
    assert len(installs(h)) == 1


async def test_unknown_until_the_deadline_fails_with_what_was_seen(
    make_harness: MakeHarness,
) -> None:
    h = await at_install(make_harness("active-passive", vip=True))
    sent_at = intent_only(h, "east-a")
    h.fake.set_down("east-a")
    result, polls = await until_not_poll(h)
    assert isinstance(result, Fail), result
    assert h.clock.now() - sent_at >= 1800
    assert result.error.startswith("Install: cannot tell whether east-a received the install")
    assert "Last seen: east-a does not answer (connection refused): rebooting, or down" in (
        result.error
    )
    assert sum(p.progress is not None for p in polls) == 1  # posted once, not every poll
    assert installs(h) == []


async def test_confirmed_resend_reads_first_and_skips_a_console_install(
    make_harness: MakeHarness,
) -> None:
    h = await at_install(make_harness("active-passive", vip=True))
    intent_only(h, "east-a")
    ask, _ = await until_not_poll(h)
    assert isinstance(ask, AskOperator)
    h.apply(ask)
    fw = h.inventory.firmware_for("9.1R18")
    assert fw is not None
    h.fake.console_install("east-a", fw.file)  # the operator did it by hand
    h.decide_open(Decision.CONFIRMED, "UOPERATOR")
    done = await h.run()
    assert isinstance(done, Advance), done
    assert "not sent again, watching" in done.detail
    assert installs(h) == []


async def test_second_send_answered_422_keeps_reading(make_harness: MakeHarness) -> None:
    h = await at_install(make_harness("active-active"))
    intent_only(h, "aa-1")
    ask, _ = await until_not_poll(h)
    assert isinstance(ask, AskOperator)
    h.apply(ask)
    h.decide_open(Decision.CONFIRMED, "UOPERATOR")
    h.fake.fail_next("install", 422)  # "already in progress", say
    result = await h.run()
    assert isinstance(result, Poll), result
    h.apply(result)
    h.wait()
    result = await h.run()  # the confirm was used: reading, not a third send
    assert isinstance(result, Poll | AskOperator), result
    assert len(installs(h)) == 1


def up(**changes: object) -> NodeSeen:
    """A node that is up, on the old build, Leader, for a day; with `changes`."""
    base = NodeSeen("n", build=RUNNING, rollback="9.1R16 (build 26213)", uptime=86400.0,
                    status="Leader")
    return dataclasses.replace(base, **changes)


@pytest.mark.parametrize(
    ("seen", "verdict", "words"),
    [
        (up(), Verdict.UNTOUCHED, "no sign of the install"),
        (up(build="9.1R18 (build 29865)"), Verdict.STARTED, "went through"),
        (up(status="Enabled, Transitioning"), Verdict.STARTED, "installing"),
        (up(uptime=20.0), Verdict.STARTED, "rebooted since"),
        (up(rollback="9.1R18 (build 29865)"), Verdict.STARTED,
         "rollback partition changed (was 9.1R16 (build 26213))"),
        (NodeSeen("n", error="connection refused", unreachable=True), Verdict.UNKNOWN,
         "n does not answer (connection refused): rebooting, or down"),
        (NodeSeen("n", error="HTTP 503: busy"), Verdict.UNKNOWN, "cannot tell"),
        (NodeSeen("n", build=RUNNING, status_error="HTTP 500"), Verdict.UNKNOWN,
         "status not readable (HTTP 500): uptime not readable"),
        (up(status="Enabled, Unreachable"), Verdict.UNKNOWN, "not in the cluster"),
        (up(moving=("m Enabled, Transitioning",)), Verdict.UNKNOWN, "not at rest"),
    ],
)
def test_judge_reads_each_sign(seen: NodeSeen, verdict: Verdict, words: str) -> None:
    got, what = judge(
        seen,
        target="9.1R18",
        since_sent=60.0,
        rollback_before="9.1R16 (build 26213)",
        clustered=True,
    )
    assert got is verdict and words in what, what
