"""The watch step wrapper: what it reads, what it keeps between polls, when it polls."""

from __future__ import annotations

from collections.abc import Callable

from jobs.rules.model import Decision, Step
from jobs.steps.base import Advance, Poll
from tests.fakes.harness import TARGET_BUILD, Harness

MakeHarness = Callable[..., Harness]


async def installed(h: Harness) -> Harness:
    """Run the procedure up to the watch (gates approved)."""
    while h.job.step != Step.WATCH_REBOOT:
        result = await h.run()
        h.apply(result)
        if h.job.open_gate() is not None:
            h.decide_open(Decision.APPROVED)
    return h


async def test_each_poll_keeps_per_node_progress_and_polls_at_the_setting(
    make_harness: MakeHarness,
) -> None:
    h = await installed(make_harness("active-active", settings_kw={"PPS_POLL_SECONDS": 7.5}))
    first = await h.run()
    assert isinstance(first, Poll) and first.after == 7.5
    node = first.outputs.watch["nodes"]["aa-1"]
    assert set(node) >= {"seen_down", "uptime_dropped", "build", "in_cluster", "last_seen"}
    assert node["in_cluster"] is False and "Enabled, Transitioning" in node["last_seen"]
    assert first.progress == "aa-1: Enabled, Transitioning"
    h.apply(first)
    h.clock.advance(60)  # aa-1 now rebooting
    second = await h.run()
    assert isinstance(second, Poll)
    assert second.outputs.watch["nodes"]["aa-1"]["seen_down"] is True
    assert second.progress == "aa-1 stopped answering (rebooting)"
    h.apply(second)
    quiet = await h.run()  # nothing changed since: no thread line
    assert isinstance(quiet, Poll) and quiet.progress is None


async def test_a_500_during_the_watch_is_not_progress_and_not_fatal(
    make_harness: MakeHarness,
) -> None:
    h = await installed(make_harness("standalone"))
    h.clock.advance(60 + 120)  # back on the new build already
    h.fake.fail_next("system_info", 500)
    result = await h.run()
    assert isinstance(result, Poll)
    assert result.outputs.watch["nodes"]["solo"]["last_seen"].startswith(
        "answers with an error (HTTP 500"
    )
    h.apply(result)
    done = await h.run()
    assert isinstance(done, Advance)
    assert done.outputs.builds_after == {"solo": TARGET_BUILD}
    assert done.outputs.rejoined_at == h.clock.now()
