"""Install: checkpoint before the one upload, never again on re-entry, 422 fails with the
appliance's words, operator-assisted when unsupported or forced, verified by reading state."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from jobs.rules.events import EventKind
from jobs.rules.model import Decision, State, Step
from jobs.rules.outputs import InstallOut
from jobs.steps.base import Advance, AskOperator, Fail
from tests.fakes.harness import TARGET_BUILD, Harness

MakeHarness = Callable[..., Harness]


async def at_install(h: Harness) -> Harness:
    """Preflight and record have run; logins are disabled; the job is at INSTALL."""
    h.apply(await h.run(Step.PREFLIGHT))
    h.job.outputs.merge((await h.run(Step.RECORD)).outputs)
    h.job.step = Step.INSTALL
    return h


async def test_checkpoint_then_one_upload_to_the_active_node(make_harness: MakeHarness) -> None:
    h = await at_install(make_harness("active-passive", vip=True))
    installs_at_checkpoint: list[int] = []
    h.on_checkpoint = lambda _o: installs_at_checkpoint.append(h.fake.count("install"))
    result = await h.run()
    assert isinstance(result, Advance), result
    assert installs_at_checkpoint == [0]
    assert h.checkpoints[0] == {"install_sent_at": h.clock.now(), "install_node": "east-a"}
    assert result.outputs.install_accepted_at == h.clock.now()
    assert [(c["node"], c["arg"]) for c in h.fake.calls if c["method"] == "install"] == [
        ("east-a", "pps-9.1R18-package.pkg")
    ]


async def test_reentry_after_checkpoint_never_uploads_again(make_harness: MakeHarness) -> None:
    h = await at_install(make_harness("standalone"))
    h.job.outputs.merge(InstallOut(install_sent_at=h.clock.now() - 12, install_node="solo"))
    result = await h.run()
    assert isinstance(result, Advance)
    assert result.outputs.install_accepted_at == h.clock.now() - 12
    assert "not sent again" in result.detail
    assert h.fake.count("install") == 0


async def test_active_moved_since_preflight_installs_on_the_vip_host(
    make_harness: MakeHarness,
) -> None:
    h = await at_install(make_harness("active-passive", vip=True))
    h.fake.active = "east-b"  # a failover happened while waiting for approval
    result = await h.run()
    assert isinstance(result, Advance)
    assert result.outputs.install_node == "east-b"


async def test_refused_422_fails_with_the_appliance_message_and_stays_refused(
    make_harness: MakeHarness,
) -> None:
    h = await at_install(make_harness("active-passive", vip=False))
    h.fake.active = "east-b"  # without a VIP the bot believes east-a is active: it is not
    result = await h.run()
    assert isinstance(result, Fail)
    assert result.error == (
        "east-a refused the install: HTTP 422: not on this node: east-a is the passive node"
    )
    again = await h.run()  # re-entry: the recorded outcome, not a second upload
    assert isinstance(again, Fail) and again.error == result.error
    assert h.fake.count("install") == 1
    # Applied: the job fails, logins flagged disabled (the disable may have gone through)
    # and the enable gate stays open.
    h.apply(again)
    assert h.job.state is State.FAILED and h.job.logins_disabled
    gate = h.job.open_gate()
    assert gate is not None and gate.step is Step.GATE_ENABLE
    assert h.events(EventKind.LOGINS_DISABLED_ALERT)


async def test_unsupported_asks_the_operator_with_package_and_sha(
    make_harness: MakeHarness,
) -> None:
    h = await at_install(make_harness("standalone"))
    h.fake.unsupported.add("install")
    ask = await h.run()
    assert isinstance(ask, AskOperator)
    fw = h.inventory.firmware_for("9.1R18")
    assert fw is not None
    assert "Maintenance > System > Upgrade/Downgrade" in ask.instructions
    assert fw.file.name in ask.instructions and fw.sha256 in ask.instructions
    assert "Install Now" in ask.instructions and "solo" in ask.instructions
    # Re-entry before the confirm was opened: still asks, never uploads again.
    assert isinstance(await h.run(), AskOperator)
    assert h.fake.count("install") == 1


async def test_forced_manual_verifies_and_asks_again_until_it_sees_the_install(
    make_harness: MakeHarness,
) -> None:
    h = await at_install(make_harness("active-active", manual=["install"]))
    ask = await h.run()
    assert isinstance(ask, AskOperator) and "aa-1" in ask.instructions
    h.apply(ask)
    h.decide_open(Decision.CONFIRMED, "UOP")  # clicked before doing it
    again = await h.run()
    assert isinstance(again, AskOperator)
    assert again.saw and again.saw.startswith("no sign of the install: aa-1 still up on 9.1R17")
    h.apply(again)
    fw = h.inventory.firmware_for("9.1R18")
    assert fw is not None
    h.fake.console_install("aa-1", fw.file)  # the operator's click in the console
    h.clock.advance(61)  # installing done, aa-1 reboots
    h.decide_open(Decision.CONFIRMED, "UOP")
    done = await h.run()
    assert isinstance(done, Advance), done
    assert "aa-1 is not answering" in done.detail
    assert done.outputs.install_by == "operator"
    assert h.fake.count("install") == 0  # the operator's click is no API call


@pytest.mark.parametrize("evidence", ["transitioning", "on_target", "uptime"])
async def test_manual_verification_accepts_each_sign(
    make_harness: MakeHarness, evidence: str
) -> None:
    h = await at_install(make_harness("active-active", manual=["install"]))
    h.apply(await h.run())
    fw = h.inventory.firmware_for("9.1R18")
    assert fw is not None
    h.fake.console_install("aa-1", fw.file)
    if evidence == "on_target":
        h.clock.advance(60 + 120 + 1)
    elif evidence == "uptime":
        # Rebooted without changing build is still a sign: compare with the recorded uptime.
        h.fake.nodes["aa-1"].upgrade = None
        h.fake.nodes["aa-1"].boot_at = h.clock.now()
    h.decide_open(Decision.CONFIRMED, "UOP")
    done = await h.run()
    assert isinstance(done, Advance), done
    words = {"transitioning": "installing", "on_target": TARGET_BUILD, "uptime": "uptime dropped"}
    assert words[evidence] in done.detail


async def test_node_down_before_upload_fails_without_sending(make_harness: MakeHarness) -> None:
    h = await at_install(make_harness("standalone"))
    h.fake.set_down("solo")
    result = await h.run()
    assert isinstance(result, Fail) and result.error.startswith("Install not sent: solo")
    assert h.checkpoints == [] and h.fake.count("install") == 0
