"""The HTTP surface as Slack and a monitoring system see it: signatures, ssl_check, health,
metrics, and every malformed `/pps` answered with a 200 and an ephemeral usage message."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.acceptance.acceptance_stack import SECRET, sign

Stack = Any
USER = "U0REQ"


def test_acceptance_health_and_metrics(stack: Stack) -> None:
    r = stack.http.get(f"{stack.bot_url}/healthz")
    assert r.status_code == 200
    stack.command(USER, "help")
    m = stack.http.get(f"{stack.bot_url}/metrics")
    assert m.status_code == 200
    assert m.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(m.text)}
    for name in ("pps_slack_commands", "pps_slack_command_ack_seconds", "pps_slack_actions",
                 "pps_slack_api_calls", "pps_notifier_events"):
        assert name in families, sorted(families)
    helped = [s for s in families["pps_slack_commands"].samples
              if s.labels.get("verb") == "help" and s.name.endswith("_total")]
    assert helped and helped[0].value >= 1


def test_acceptance_ssl_check_is_200_without_signature(stack: Stack) -> None:
    r = stack.http.post(f"{stack.bot_url}/slack/events", content=b"ssl_check=1&token=x",
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200


def test_acceptance_unsigned_stale_or_forged_requests_get_401(stack: Stack) -> None:
    body = stack.command_body(USER, "upgrade lab8")
    now = int(time.time())
    url = f"{stack.bot_url}/slack/events"
    plain = {"Content-Type": "application/x-www-form-urlencoded"}
    assert stack.http.post(url, content=body, headers=plain).status_code == 401
    assert stack.post_signed(body, ts=str(now - 400)).status_code == 401
    assert stack.post_signed(body, ts=str(now + 400)).status_code == 401
    assert stack.post_signed(body, secret="not-the-secret").status_code == 401
    # A body changed after signing.
    ts = str(now)
    h = {**plain, "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sign(SECRET, ts, body)}
    assert stack.http.post(url, content=body + b"x", headers=h).status_code == 401
    # Malformed signature headers: refused as unsigned, never a 5xx.
    for bad in ({"X-Slack-Request-Timestamp": "abc"}, {"X-Slack-Request-Timestamp": ""},
                {"X-Slack-Request-Timestamp": "1e3"}, {"X-Slack-Request-Timestamp": "-5"},
                {"X-Slack-Signature": "garbage"}, {"X-Slack-Signature": ""}):
        assert stack.post_signed(body, headers=bad).status_code == 401, bad
    # None of these created a job.
    assert "No active or scheduled jobs" in json.dumps(stack.command(USER, "list"))


def test_acceptance_signing_matches_slack_test_vector() -> None:
    body = (b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&"
            b"channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&"
            b"command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2F"
            b"commands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&"
            b"trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
    assert sign("8f742231b10e8888abcd99yyyzzz85a5", "1531420618", body) == (
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503")


MALFORMED = [
    "",
    "   ",
    "frobnicate",
    "upgrade",
    "upgrade lab8 --bogus",
    "upgrade lab8 9.1R18 extra words here",
    "upgrade lab8 --at",
    "upgrade lab8 --at 25:99",
    "upgrade lab8 --at yesterday-ish",
    "status a b c",
    "status !!!",
    "abort",
    "abort a b",
    "history x y",
    "clusters now",
    "list everything",
    "UPGRADE",
    "upgrade <!channel>",
    "upgrade lab8 \u202e\u0000\u00ff",
    "x" * 4000,
    "upgrade " + "a" * 300,
    "abort " + "J" * 40,
]


@pytest.mark.parametrize("text", MALFORMED)
def test_acceptance_malformed_command_gets_ephemeral_usage(stack: Stack, text: str) -> None:
    ack = stack.command(USER, text)
    assert ack.get("response_type") == "ephemeral", ack
    assert isinstance(ack.get("text"), str) and ack["text"].strip(), ack
    shown = ack["text"] + json.dumps(ack.get("blocks") or [])
    assert "Usage" in shown or "/pps help" in shown or "usage" in shown, ack
    assert "Traceback" not in shown
    assert "<!channel>" not in shown


def test_acceptance_unknown_cluster_and_job_are_refused_ephemerally(stack: Stack) -> None:
    for text in ("upgrade nosuch", "status J-9999", "abort J-9999", "status nosuch",
                 "history nosuch", "upgrade lab8 7.0R1"):
        ack = stack.command(USER, text)
        assert ack.get("response_type") == "ephemeral", (text, ack)
        assert ack.get("text"), (text, ack)
    assert "No active or scheduled jobs" in json.dumps(stack.command(USER, "list"))


def test_acceptance_help_and_clusters(stack: Stack) -> None:
    helptext = json.dumps(stack.command(USER, "help"))
    for verb in ("upgrade", "status", "list", "abort", "history", "clusters", "help",
                 "--dry-run", "--at", "--allow-downgrade"):
        assert verb in helptext, verb
    clusters = stack.command(USER, "clusters")
    assert clusters["response_type"] == "ephemeral"
    shown = json.dumps(clusters)
    for name in ("east", "lab1", "lab8"):
        assert name in shown


def test_acceptance_garbage_click_is_refused_without_5xx(stack: Stack) -> None:
    payload = {
        "type": "block_actions", "team": {"id": "T0FAKE"}, "user": {"id": USER},
        "api_app_id": "A0APP", "trigger_id": "1.2", "channel": {"id": "C0PPS"},
        "container": {"type": "message", "message_ts": "1.1", "channel_id": "C0PPS"},
        "actions": [{"type": "button", "action_id": "pps_approve", "block_id": "b",
                     "value": "not-ours", "action_ts": "1.3"}],
    }
    r = stack.post_signed(urlencode({"payload": json.dumps(payload)}).encode())
    assert r.status_code == 200
    stack.ephemeral_for(USER, "not one I know")
    for body in (b"payload=%7Bnot-json", b"payload=%5B1%2C2%5D", b"payload=", b"\xff\xfe"):
        assert stack.post_signed(body).status_code < 500, body
        r = stack.http.post(f"{stack.bot_url}/slack/events", content=body,
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status_code < 500, body


def test_acceptance_events_api_challenge_and_stray_event(stack: Stack) -> None:
    challenge = json.dumps({"type": "url_verification", "challenge": "c-123",
                            "token": "x"}).encode()
    r = stack.post_signed(challenge, headers={"Content-Type": "application/json"})
    assert r.status_code == 200 and "c-123" in r.text
    stray = json.dumps({"type": "event_callback", "team_id": "T0FAKE", "api_app_id": "A0APP",
                        "event": {"type": "app_mention", "user": USER, "text": "hi",
                                  "channel": "C0PPS", "ts": "1.2"},
                        "event_id": "Ev1", "event_time": 1}).encode()
    r = stack.post_signed(stray, headers={"Content-Type": "application/json"})
    assert r.status_code < 500
    unknown_cmd = stack.command_body(USER, "help").replace(b"%2Fpps", b"%2Fother")
    assert stack.post_signed(unknown_cmd).status_code < 500
