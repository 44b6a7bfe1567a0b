"""The whole demo in Chromium: `ppsbot demo` (fast timings), the channel page, one upgrade.

Runs the real processes (simulator, stand-in + page, worker, bot) exactly as `make demo`
does, against the Redis at REDIS_URL under a private prefix. The requester's own approval
is refused, two approvers pass both gates, the card reaches `succeeded`; the app's Home tab
then shows the fleet with the upgraded cluster (after a fleet poll) and a link back to the
card; then SIGINT must stop every child. Screenshots of each stage go to test-artifacts/.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis as redis_sync

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(180)]

REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
CARD = '#messages > .msg[data-event-type="pps_job"]'
# Approval buttons on messages everyone sees (not on ephemeral copies).
APPROVE = '#messages > .msg[data-ephemeral="false"] button[data-action-id="pps_approve"]'
REJECT = '#messages > .msg[data-ephemeral="false"] button[data-action-id="pps_reject"]'
EPHEMERAL = '#messages > .msg[data-ephemeral="true"]'


# The Home tab's cluster-east section names the job as the last one, with both nodes on
# the target build (read by a fleet poll after the upgrade).
HOME_SHOWS_UPGRADE = """(jobId) => {
  const s = [...document.querySelectorAll('#home .bk-section')]
    .find((e) => e.textContent.includes('cluster-east ·'));
  if (!s) return false;
  const t = s.textContent;
  return t.includes('Last: ' + jobId) && t.includes('east-a — 9.1R18 (build 29865)')
    && t.includes('east-b — 9.1R18 (build 29865)');
}"""


def click_button(page: Any, selector: str) -> str:
    """Click the newest button matching `selector`, accepting its confirm dialog if it has
    one; returns the ts of the message that carries it."""
    page.wait_for_selector(selector, timeout=60_000)
    button = page.locator(selector).last
    ts = button.get_attribute("data-message-ts") or ""
    has_confirm = button.get_attribute("data-has-confirm") == "true"
    button.click()
    if has_confirm:
        page.locator("#confirm-modal").wait_for(state="visible")
        page.locator("#confirm-ok").click()
        page.locator("#confirm-modal").wait_for(state="hidden")
    return ts


def wait_count(page: Any, selector: str, n: int, timeout: float = 15_000) -> None:
    page.wait_for_function(f"document.querySelectorAll('{selector}').length === {n}",
                           timeout=timeout)


def wait_more(page: Any, selector: str, than: int, timeout: float = 15_000) -> None:
    page.wait_for_function(f"document.querySelectorAll('{selector}').length > {than}",
                           timeout=timeout)


def test_demo_upgrade_in_the_browser(
    tmp_path: Path, chromium_browser: Any, artifacts: Path, start_demo: Callable[[Path], Any],
    pid_alive: Callable[[int], bool],
) -> None:
    started = time.monotonic()
    demo = start_demo(tmp_path / "demo-run")
    status: dict[str, Any] = {}
    page = None
    rc: int | None = None
    try:
        status = demo.wait_up()
        assert "pps-chatops demo is up" in demo.output()
        page = chromium_browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(status["page_url"])
        page.wait_for_selector('#conn[data-connected="true"]')
        assert page.input_value("#user-select") == "U_REQUESTER"

        # 1. The requester asks for the upgrade; the ack is ephemeral and names the job.
        page.fill("#command-input", "/pps upgrade cluster-east")
        page.press("#command-input", "Enter")
        ack = page.locator(EPHEMERAL).filter(has=page.locator("code")).first
        ack.wait_for(timeout=15_000)
        card = page.locator(CARD).first
        card.wait_for(timeout=15_000)
        job_id = card.get_attribute("data-job-id") or ""
        assert job_id and job_id in ack.inner_text()
        page.screenshot(path=str(artifacts / "demo-01-requested.png"))

        # 2. The requester (an approver of other people's jobs) tries to approve their own
        #    disable gate: the two-person rule refuses, and only they see why.
        page.wait_for_selector(APPROVE, timeout=60_000)
        page.wait_for_selector(f'{CARD}[data-job-state="awaiting_approval"]', timeout=15_000)
        before = page.locator(EPHEMERAL).count()
        gate1 = click_button(page, APPROVE)
        wait_more(page, EPHEMERAL, before)
        refusal = page.locator(EPHEMERAL).last.inner_text()
        assert "Only visible to you" in refusal
        assert "Two-person rule" in refusal, refusal
        assert card.get_attribute("data-job-state") == "awaiting_approval"
        assert page.locator(f'{APPROVE}[data-message-ts="{gate1}"]').count() == 1
        page.screenshot(path=str(artifacts / "demo-02-requester-refused.png"))

        # A stranger may look but not decide: Reject is refused too, nothing changes.
        page.select_option("#user-select", "U_STRANGER")
        wait_count(page, EPHEMERAL, 0)
        click_button(page, REJECT)
        wait_more(page, EPHEMERAL, 0)
        assert "approvers of cluster-east" in page.locator(EPHEMERAL).last.inner_text()
        assert card.get_attribute("data-job-state") == "awaiting_approval"

        # 3. An approver approves the disable gate; the refusal is not theirs to see.
        page.select_option("#user-select", "U_APPROVER1")
        wait_count(page, EPHEMERAL, 0)
        click_button(page, APPROVE)
        page.wait_for_function(
            f"document.querySelectorAll('{APPROVE}[data-message-ts=\"{gate1}\"]').length === 0",
            timeout=15_000,
        )
        page.screenshot(path=str(artifacts / "demo-03-disable-approved.png"))

        # 4. Install, reboots, settle; then the enable gate (a new message) for the other
        #    approver.
        page.select_option("#user-select", "U_APPROVER2")
        page.wait_for_function(
            f"[...document.querySelectorAll('{APPROVE}')]"
            f".some(b => b.dataset.messageTs !== '{gate1}')",
            timeout=90_000,
        )
        page.screenshot(path=str(artifacts / "demo-04-enable-gate.png"))
        gate2 = click_button(page, APPROVE)
        assert gate2 != gate1

        # 5. The card turns green; its thread holds every transition.
        page.wait_for_selector(f'{CARD}[data-job-state="succeeded"]', timeout=60_000)
        card.evaluate("el => el.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(1500)  # let the "just edited" highlight fade for the picture
        page.screenshot(path=str(artifacts / "demo-05-succeeded.png"))
        card.locator(".thread-toggle").first.click()
        assert card.locator(".thread-replies .msg").count() >= 11
        card.locator(".thread-replies").evaluate("el => el.scrollIntoView({block: 'start'})")
        page.screenshot(path=str(artifacts / "demo-06-thread.png"))

        # 6. The Home tab: opening it makes the bot publish the fleet; a poll after the
        #    upgrade shows both east nodes on the target, the other clusters marked older.
        page.click("#tab-home")
        page.wait_for_selector("#home:not([hidden]) .bk-section", timeout=15_000)
        assert page.locator("#messages").is_hidden() and page.locator("#composer").is_hidden()
        page.wait_for_function(HOME_SHOWS_UPGRADE, arg=job_id, timeout=40_000)
        east = page.locator("#home .bk-section", has_text="cluster-east ·")
        west = page.locator("#home .bk-section", has_text="cluster-west ·")
        assert "older than 9.1R18" in west.inner_text()
        assert "older than" not in east.inner_text()
        page.wait_for_timeout(500)
        page.screenshot(path=str(artifacts / "demo-07-home-tab.png"))
        href = east.locator('a[href*="/archives/"]').get_attribute("href") or ""
        assert href.startswith(status["page_url"] + "archives/C0PPSDEMO/p"), href
        page.goto(href)  # the card link leads back to the card in the channel
        page.wait_for_selector(f'{CARD}[data-job-id="{job_id}"].flash', timeout=15_000)
    except BaseException:
        if page is not None:
            page.screenshot(path=str(artifacts / "demo-failure.png"))
        print(demo.output(), demo.logs(), sep="\n", file=sys.stderr)
        raise
    finally:
        if page is not None:
            page.close()
        rc = demo.interrupt()

    # Ctrl-C: a clean exit, no child left, no key left under the demo's prefix.
    out = demo.output()
    assert rc == 0, out
    assert "no process left" in out, out
    alive = {n: p for n, p in status["pids"].items() if pid_alive(p)}
    assert not alive, f"processes left after SIGINT: {alive}"
    r = redis_sync.Redis.from_url(REDIS_URL)
    assert list(r.scan_iter(match=status["redis_prefix"] + "*", count=500)) == []
    timings = {
        "startup_seconds": status["startup_seconds"],
        "test_seconds": round(time.monotonic() - started, 1),
    }
    (artifacts / "demo-browser-timings.json").write_text(json.dumps(timings) + "\n")
    print(f"demo start-up {timings['startup_seconds']} s, browser test {timings['test_seconds']} s")
