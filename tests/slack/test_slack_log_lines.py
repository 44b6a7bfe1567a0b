"""Log lines cannot be forged from outside: every record is exactly one line whatever it
contains, and no line carries a Slack request's body (Bolt logs a refused request's raw
body at INFO)."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import structlog

from jobs.config.log import configure_logging, get_logger
from tests.fakes.bot_process import BotProcess

FORGED = '{"event": "forged", "level": "critical"}'
MARKER = "s3cret-marker-9f1b"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put logging back the way the test found it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    noisy = {n: logging.getLogger(n).level for n in ("httpx", "httpcore")}
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)
    for n, lvl in noisy.items():
        logging.getLogger(n).setLevel(lvl)
    structlog.reset_defaults()


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_log_every_record_is_one_line_with_control_characters_escaped(
    fmt: str, restore_logging: None
) -> None:
    out = io.StringIO()
    configure_logging("INFO", fmt, stream=out)
    hostile = f"a\nb\r\n{FORGED}\x1b[31mred\x85\u2028\x7f"
    get_logger("test.ours").info("ours", value=hostile)
    get_logger("test.ours").warning(hostile)
    logging.getLogger("some.library").warning("library said %s", hostile)
    try:
        raise ValueError(hostile)
    except ValueError:
        get_logger("test.ours").exception("failed")
        logging.getLogger("some.library").exception("failed too")
    lines = out.getvalue().split("\n")
    assert lines[-1] == "" and len(lines[:-1]) == 5, out.getvalue()
    text = out.getvalue()
    for bad in ("\r", "\x1b[31m", "\x85", "\u2028", "\x7f"):
        assert bad not in text, repr(bad)
    if fmt == "json":
        records = [json.loads(line) for line in lines[:-1]]
        assert [r["event"] for r in records if r["event"] == "forged"] == []
        assert records[0]["value"] == hostile  # escaped in the line, intact in the record
        assert hostile in records[4]["exception"]
    else:
        assert "a\\nb\\r\\n" in lines[0]


def test_log_bolt_records_never_carry_the_request(restore_logging: None) -> None:
    out = io.StringIO()
    configure_logging("DEBUG", "json", stream=out)
    body = f"token=x&text={MARKER}"
    logging.getLogger("slack_bolt.AsyncRequestVerification").info(
        f"Invalid request signature detected (signature: v0=1, timestamp: 1, body: {body})")
    logging.getLogger("slack_bolt.AsyncApp").warning(f"Unhandled request ({{'text': '{MARKER}'}})")
    logging.getLogger("slack_sdk.socket_mode.aiohttp").debug(f"on_message (message: {MARKER})")
    assert MARKER not in out.getvalue()
    events = [json.loads(line)["event"] for line in out.getvalue().splitlines()]
    assert events[0].startswith("Invalid request signature detected")


@pytest.mark.slow
def test_log_of_a_running_bot_is_json_lines_without_request_bodies(tmp_path: Path) -> None:
    bot = BotProcess(tmp_path)
    try:
        bot.wait_healthy()
        body = f"command=%2Fpps&text={MARKER}\n{FORGED}\n".encode()
        r = httpx.post(bot.url + "/slack/events", content=body, headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": str(int(time.time())),
            "X-Slack-Signature": "v0=" + "0" * 64})
        assert r.status_code == 401
        deadline = time.monotonic() + 5
        while "Invalid request signature" not in bot.text() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        log = bot.stop()
    assert "Invalid request signature" in log, log
    assert MARKER not in log
    records = []
    for line in log.splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            pytest.fail(f"not one JSON record per line: {line!r}\n{log}")
    assert [r for r in records if r.get("event") == "forged"] == []
    assert {"bot_started", "auth_test_failed"} <= {r.get("event") for r in records}


def test_log_httpx_request_lines_only_at_debug(restore_logging: None) -> None:
    def lines(level: str) -> list[str]:
        out = io.StringIO()
        configure_logging(level, "json", stream=out)
        logging.getLogger("httpx").info("HTTP Request: GET http://node/api/v1/x 200")
        logging.getLogger("httpx").warning("httpx warned")
        get_logger("jobs.appliance").info("pps.write")
        return [line for line in out.getvalue().split("\n") if line]

    info = lines("INFO")
    assert len(info) == 2 and "httpx warned" in info[0] and "pps.write" in info[1]
    assert len(lines("DEBUG")) == 3
    assert len(lines("ERROR")) == 0
