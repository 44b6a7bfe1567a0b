"""The channel page in Chromium against a scripted fake of the stand-in's control API.

Pins what the page promises on its own: Block Kit and mrkdwn rendering (escaped text stays
text), confirm dialogs before a click is sent, ephemerals only for their viewer, threads,
edits in place, commands and clicks sent as the selected user.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

CH = "C0PPSDEMO"
CARD_TS = "1800000000.000100"
GATE_TS = "1800000001.000200"


def card_blocks(state: str) -> list[dict[str, Any]]:
    return [
        {"type": "header", "text": {"type": "plain_text", "text": "Upgrade cluster-east → 9.1R18"}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"*State:* `{state}` requested by <@U_REQUESTER>"},
            "fields": [
                {"type": "mrkdwn", "text": "*Cluster*\ncluster-east"},
                {"type": "mrkdwn", "text": "*Target*\n9.1R18"},
            ],
        },
        {"type": "divider"},
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": "job `J-0001` · <https://example.net/x|runbook>"}
            ],
        },
    ]


def gate_blocks() -> list[dict[str, Any]]:
    confirm = {
        "title": {"type": "plain_text", "text": "Disable all user logins?"},
        "text": {"type": "mrkdwn", "text": "*412* sessions will be cut."},
        "confirm": {"type": "plain_text", "text": "Yes, disable"},
        "deny": {"type": "plain_text", "text": "Not yet"},
    }
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": "Approve disabling logins?"}},
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": "pps_approve",
                    "style": "primary",
                    "value": "J-0001:G01-abc",
                    "text": {"type": "plain_text", "text": "Approve"},
                    "confirm": confirm,
                },
                {
                    "type": "button",
                    "action_id": "pps_reject",
                    "style": "danger",
                    "value": "J-0001:G01-abc",
                    "text": {"type": "plain_text", "text": "Reject"},
                },
            ],
        },
    ]


def meta(state: str) -> dict[str, Any]:
    return {
        "event_type": "pps_job",
        "event_payload": {"job_id": "J-0001", "cluster": "cluster-east", "state": state,
                          "step": "gate_disable"},
    }


def test_page_renders_and_drives_the_control_api(
    fake_standin: tuple[Any, str], chromium_browser: Any, artifacts: Path
) -> None:
    fake, url = fake_standin
    fake.post(CH, CARD_TS, "card", blocks=card_blocks("running"), metadata=meta("running"))
    fake.post(CH, "1800000000.000300", "Preflight passed", thread_ts=CARD_TS)
    fake.post(CH, GATE_TS, "gate", blocks=gate_blocks(), thread_ts=CARD_TS, reply_broadcast=True)
    fake.post(CH, "1800000002.000100", "for approver only", ephemeral_for="U_APPROVER1")
    fake.post(CH, "1800000003.000100",
              "hi <@U_APPROVER2> &lt;!channel&gt; a &amp;lt; b *bold* _it_ U_REQUESTER")

    page = chromium_browser.new_page()
    page.goto(url + "/")
    card = page.locator(f'.msg[data-ts="{CARD_TS}"]')
    card.wait_for()
    assert card.get_attribute("data-event-type") == "pps_job"
    assert card.get_attribute("data-job-state") == "running"
    assert card.locator(".bk-header").inner_text() == "Upgrade cluster-east → 9.1R18"
    assert card.locator(".bk-fields .bk-field").count() == 2
    assert card.locator("code.mk-code").first.inner_text() == "running"
    assert card.locator(".mk-mention").first.inner_text() == "@riley.requester"
    link = card.locator('.bk-context a[href="https://example.net/x"]')
    assert link.inner_text() == "runbook"
    assert card.locator("hr.bk-divider").count() == 1

    # Escaped user text stays text: no broadcast mention, the literal characters shown.
    last = page.locator('.msg[data-ts="1800000003.000100"]')
    assert last.locator(".mk-broadcast").count() == 0
    assert "<!channel> a &lt; b" in last.inner_text()
    assert last.locator("b").inner_text() == "bold"
    assert last.locator("i").inner_text() == "it"
    assert "U_REQUESTER" in last.inner_text()  # underscores in ids are not italics
    assert last.locator(".mk-mention").inner_text() == "@sam.approver"

    # The requester does not see the approver's ephemeral.
    assert page.locator('.msg[data-ephemeral="true"]').count() == 0

    # A broadcast reply is in the channel; the card's thread lists both replies on demand.
    gate = page.locator(f'#messages > .msg[data-ts="{GATE_TS}"]')
    assert gate.get_attribute("data-broadcast") == "true"
    toggle = card.locator(f'.thread-toggle[data-thread-ts="{CARD_TS}"]')
    assert toggle.inner_text() == "2 replies"
    toggle.click()
    assert card.locator(".thread-replies .msg.reply").count() == 2
    page.screenshot(path=str(artifacts / "page-01-rendered.png"))

    # The confirm dialog is a real modal; cancelling sends nothing.
    approve = gate.locator('button[data-action-id="pps_approve"]')
    assert "bk-primary" in (approve.get_attribute("class") or "")
    reject = gate.locator('button[data-action-id="pps_reject"]')
    assert "bk-danger" in (reject.get_attribute("class") or "")
    approve.click()
    modal = page.locator("#confirm-modal")
    modal.wait_for(state="visible")
    assert page.locator("#confirm-title").inner_text() == "Disable all user logins?"
    assert page.locator("#confirm-text b").inner_text() == "412"
    assert page.locator("#confirm-ok").inner_text() == "Yes, disable"
    page.screenshot(path=str(artifacts / "page-02-confirm.png"))
    page.locator("#confirm-cancel").click()
    modal.wait_for(state="hidden")
    assert fake.clicks == []
    assert page.locator("#command-result").get_attribute("data-status") == "cancelled"

    approve.click()
    page.locator("#confirm-ok").click()
    page.wait_for_function("document.querySelector('#command-result').dataset.status === 'ok'")
    assert fake.clicks == [
        {"user_id": "U_REQUESTER", "channel_id": CH, "message_ts": GATE_TS,
         "action_id": "pps_approve", "value": "J-0001:G01-abc"}
    ]

    # A button without a confirm object sends at once.
    reject.click()
    page.wait_for_function("window.PPS && document.querySelector('#command-result')"
                           ".textContent.includes('Reject')")
    assert fake.clicks[-1]["action_id"] == "pps_reject"
    assert page.locator("#confirm-modal").is_hidden()

    # Switching user: the new viewer's ephemeral appears, the URL remembers the user.
    page.select_option("#user-select", "U_APPROVER1")
    eph = page.locator('.msg[data-ephemeral="true"]')
    eph.wait_for()
    assert "Only visible to you" in eph.inner_text()
    assert "user=U_APPROVER1" in page.url
    assert any(r.get("viewer") == "U_APPROVER1" for r in fake.state_requests)

    # An edit updates the same message in place.
    count = page.locator("#messages > .msg").count()
    fake.update(CH, CARD_TS, blocks=card_blocks("succeeded"), metadata=meta("succeeded"))
    page.wait_for_selector(f'.msg[data-ts="{CARD_TS}"][data-job-state="succeeded"]')
    assert page.locator("#messages > .msg").count() == count
    assert card.locator(".edited").inner_text() == "(edited)"
    assert card.get_attribute("data-edited") == "true"

    # The command box sends /pps text as the selected user; other slash commands are refused.
    page.fill("#command-input", "/pps status cluster-east")
    page.press("#command-input", "Enter")
    page.wait_for_function("document.querySelector('#command-result').dataset.status === 'ok'")
    assert fake.commands == [
        {"user_id": "U_APPROVER1", "channel_id": CH, "text": "status cluster-east"}
    ]
    assert page.input_value("#command-input") == "/pps "
    page.fill("#command-input", "/giphy cats")
    page.click("#command-send")
    page.wait_for_function(
        "document.querySelector('#command-result').dataset.status === 'error'"
    )
    assert len(fake.commands) == 1
    page.screenshot(path=str(artifacts / "page-03-approver.png"))
    page.close()
