"""Disable / enable logins: check first, checkpoint before the one write, read back,
operator-assisted when unsupported or forced, and never a second write."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jobs.appliance.protocol import VIP
from jobs.rules.model import Decision, Step
from jobs.steps.base import Advance, AskOperator, Fail, Poll
from jobs.steps.logins import VERIFY_POLLS
from tests.fakes.appliance import FakeCluster
from tests.fakes.harness import Harness

MakeHarness = Callable[..., Harness]


def writes(h: Harness) -> list[dict[str, Any]]:
    return [c for c in h.fake.calls if c["method"] == "set_login_permission"]


def at_disable(h: Harness, acting: str | None = None) -> Harness:
    h.job.step = Step.DISABLE_LOGINS
    h.job.outputs.acting_node = acting or h.cluster.node_names[0]
    return h


async def test_already_disabled_advances_without_writing(make_harness: MakeHarness) -> None:
    h = at_disable(make_harness("standalone", fake_kw={"login_permission": False}))
    result = await h.run()
    assert isinstance(result, Advance)
    assert result.outputs.disable_logins.by == "already"
    assert writes(h) == [] and h.checkpoints == []


async def test_checkpoint_before_the_single_write_then_read_back(
    make_harness: MakeHarness,
) -> None:
    h = at_disable(make_harness("active-passive", vip=True))
    seen_at_checkpoint: list[int] = []
    h.on_checkpoint = lambda _out: seen_at_checkpoint.append(len(writes(h)))
    result = await h.run()
    assert isinstance(result, Advance), result
    assert seen_at_checkpoint == [0]  # the intent was durable before the request went out
    assert h.checkpoints[0]["disable_logins_target"] == VIP
    assert [(c["node"], c["arg"]) for c in writes(h)] == [(VIP, "enabled=False")]
    assert h.fake.login_permission is False
    assert result.outputs.disable_logins.by == "api"
    # Re-entry (a duplicate delivery after the commit was lost): check sees it done.
    again = await h.run()
    assert isinstance(again, Advance) and len(writes(h)) == 1


async def test_reentry_after_checkpoint_never_writes_again(make_harness: MakeHarness) -> None:
    h = at_disable(make_harness("standalone"))
    # A worker checkpointed the intent and died; whether its request arrived is unknown.
    h.job.outputs.disable_logins_sent_at = h.clock.now() - 30
    # It may still be on its way: read again on the next polls, never write.
    for n in range(1, VERIFY_POLLS + 1):
        poll = await h.run()
        assert isinstance(poll, Poll), poll
        assert poll.outputs.model_dump(exclude_unset=True) == {"disable_logins_verify_polls": n}
        h.apply(poll)
    result = await h.run()
    assert isinstance(result, AskOperator)
    assert result.saw and "still enabled" in result.saw
    assert "Disable All Users" in result.instructions
    assert writes(h) == []


async def test_a_write_that_shows_late_is_found_on_a_later_poll(make_harness: MakeHarness) -> None:
    h = at_disable(make_harness("standalone"))
    h.job.outputs.disable_logins_sent_at = h.clock.now() - 1
    poll = await h.run()
    assert isinstance(poll, Poll) and poll.progress and "reading again" in poll.progress
    h.apply(poll)
    h.fake.console_set_login_permission(False)  # the appliance applied it late
    done = await h.run()
    assert isinstance(done, Advance) and writes(h) == []


async def test_unsupported_write_asks_an_operator_and_verifies_after_confirm(
    make_harness: MakeHarness,
) -> None:
    h = at_disable(make_harness("active-passive", vip=True))
    h.fake.unsupported.add("set_login_permission")
    ask = await h.run()
    assert isinstance(ask, AskOperator)
    assert "does not support" in ask.reason
    assert "east-a (https://east-a.example.net/admin)" in ask.instructions
    assert "System > Status > Active Users" in ask.instructions
    assert "Disable All Users" in ask.instructions
    h.apply(ask)
    # Confirmed although nobody clicked anything: verification says what it saw, asks again.
    h.decide_open(Decision.CONFIRMED, "UOP")
    again = await h.run()
    assert isinstance(again, AskOperator)
    assert again.saw == "login permission still enabled on the VIP"
    h.apply(again)
    assert h.job.open_gate() is not None  # a fresh confirm
    h.fake.console_set_login_permission(False)  # the operator clicks Disable All Users
    h.decide_open(Decision.CONFIRMED, "UOP")
    done = await h.run()
    assert isinstance(done, Advance) and done.outputs.disable_logins.by == "operator"
    assert len(writes(h)) == 1  # only the refused attempt


async def test_forced_manual_never_writes(make_harness: MakeHarness) -> None:
    h = at_disable(make_harness("standalone", manual=["logins"]))
    ask = await h.run()
    assert isinstance(ask, AskOperator)
    assert "inventory lists 'logins' as manual" in ask.reason
    h.apply(ask)
    h.fake.console_set_login_permission(False)
    h.decide_open(Decision.CONFIRMED, "UOP")
    done = await h.run()
    assert isinstance(done, Advance)
    assert writes(h) == [] and h.checkpoints == []


async def test_vip_down_goes_through_the_acting_node(make_harness: MakeHarness) -> None:
    h = at_disable(make_harness("active-passive", vip=True), acting="east-b")
    h.fake.vip_down = True
    result = await h.run()
    assert isinstance(result, Advance)
    assert [c["node"] for c in writes(h)] == ["east-b"]


async def test_acting_node_down_goes_through_another_member(make_harness: MakeHarness) -> None:
    h = at_disable(make_harness("active-active"))
    h.fake.set_down("aa-1")
    result = await h.run()
    assert isinstance(result, Advance)
    assert [c["node"] for c in writes(h)] == ["aa-2"]
    assert result.outputs.disable_logins.via == "aa-2"


class IgnoringWrites(FakeCluster):
    """An appliance that answers 200 to the PUT but changes nothing."""

    async def set_login_permission(self, node: str, enabled: bool) -> None:
        self._enter("set_login_permission", node, write=f"enabled={enabled}")


async def test_read_back_disagreeing_asks_an_operator_with_what_it_saw(
    make_harness: MakeHarness,
) -> None:
    h = at_disable(make_harness("standalone"))
    h.fake = IgnoringWrites.restore(h.fake.snapshot(), h.clock)
    for _ in range(VERIFY_POLLS):  # read again a few polls before a human is asked
        poll = await h.run()
        assert isinstance(poll, Poll), poll
        h.apply(poll)
    result = await h.run()
    assert isinstance(result, AskOperator)
    assert result.saw and result.saw.endswith("login permission still enabled")
    assert result.reason == "a request was already sent"
    h.apply(result)
    h.decide_open(Decision.CONFIRMED, "UOP")
    again = await h.run()  # verification only
    assert isinstance(again, AskOperator)
    assert len(writes(h)) == 1


async def test_a_500_on_the_write_is_not_retried(make_harness: MakeHarness) -> None:
    h = at_disable(make_harness("standalone"))
    h.fake.fail_next("set_login_permission", 500)
    result = await h.run()
    assert isinstance(result, AskOperator)
    assert "the request failed: HTTP 500" in result.reason
    await h.run()
    assert len(writes(h)) == 1


async def test_enable_logins_mirrors_disable(make_harness: MakeHarness) -> None:
    h = make_harness("active-passive", vip=True, fake_kw={"login_permission": False})
    h.job.step = Step.ENABLE_LOGINS
    h.job.outputs.acting_node = "east-a"
    h.fake.unsupported.add("set_login_permission")
    ask = await h.run()
    assert isinstance(ask, AskOperator) and "Enable All Users" in ask.instructions
    h.apply(ask)
    h.fake.console_set_login_permission(True)
    h.decide_open(Decision.CONFIRMED, "UOP")
    done = await h.run()
    assert isinstance(done, Advance) and done.outputs.enable_logins.enabled is True


async def test_nothing_answers_fails_without_writing(make_harness: MakeHarness) -> None:
    h = at_disable(make_harness("standalone"))
    h.fake.set_down("solo")
    result = await h.run()
    assert isinstance(result, Fail) and "Cannot read the login permission" in result.error
    assert writes(h) == []
