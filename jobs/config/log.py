"""Structured logging (structlog): JSON in production, console on a terminal.

Every record, ours and the libraries' (Bolt, uvicorn, slack_sdk, APScheduler go through
the standard `logging` module), is rendered by one pipeline into exactly one line:
control characters in any value are escaped, secrets are masked, and records of the Slack
libraries never carry the content of a request (Bolt logs a refused request's raw body).
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, TextIO

import structlog

_SECRET_KEYS = ("password", "token", "secret", "api_key", "authorization")
# C0 and C1 control characters, DEL, and the Unicode line and paragraph separators.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# What `str.splitlines` breaks a line at.
_LINE_BREAKS = re.compile(r"[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
# Loggers of the Slack libraries, whose messages may quote a request; and where in such a
# message the request's content starts (it is cut there).
_REQUEST_LOGGERS = ("slack_bolt", "ppsbot.bolt", "slack_sdk.socket_mode")
_REQUEST_CONTENT = re.compile(
    r"(?i)(\(signature:|\bbody\b|\bpayload\b|\benvelope\b|message:|request \(|\(\{|\{['\"])"
)
WITHHELD = "[request content withheld]"


def _escaped(m: re.Match[str]) -> str:
    c = m.group(0)
    return _NAMED.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")


def one_line(text: str) -> str:
    """`text` with every control character escaped (`\\n`, `\\x1b`, `\\u2028`)."""
    return _CONTROL.sub(_escaped, text)


def withhold_request_content(logger_name: str, message: str) -> str:
    """A Slack library's message cut where it starts quoting a request."""
    if not logger_name.startswith(_REQUEST_LOGGERS):
        return message
    m = _REQUEST_CONTENT.search(message)
    return message if m is None else f"{message[: m.start()].rstrip(' (:,')} {WITHHELD}"


def _drop_secrets(
    _logger: object, _name: str, event: structlog.types.EventDict
) -> structlog.types.EventDict:
    for k in list(event):
        if any(s in k.lower() for s in _SECRET_KEYS):
            event[k] = "***"
    return event


def _foreign_record(
    _logger: object, _name: str, event: structlog.types.EventDict
) -> structlog.types.EventDict:
    record = event.get("_record")
    if isinstance(record, logging.LogRecord) and not event.get("_from_structlog"):
        event["logger"] = record.name
        event["event"] = withhold_request_content(record.name, str(event.get("event", "")))
    return event


# What the console renderer prints as is; it shows every other value as its repr().
_CONSOLE_RAW = frozenset({"event", "exception", "stack", "logger", "logger_name"})


def _escape_console(
    _logger: object, _name: str, event: structlog.types.EventDict
) -> structlog.types.EventDict:
    for k in _CONSOLE_RAW & event.keys():
        if isinstance(event[k], str):
            event[k] = one_line(event[k])
    return event


def _console_line(_logger: object, _name: str, rendered: Any) -> str:
    # Values are escaped already; what is left is the renderer's own layout (a traceback
    # goes on lines of its own) and its colours (kept).
    return _LINE_BREAKS.sub(_escaped, str(rendered))


def _json_line(_logger: object, _name: str, rendered: Any) -> str:
    # json.dumps escapes every control character but DEL (and, ASCII only, everything
    # beyond), so a JSON record is one line already.
    return str(rendered).replace("\x7f", "\\u007f")


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The one handler `configure_logging` installs on the root logger."""


def configure_logging(level: str = "INFO", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Configure logging once per process; `fmt` is auto, json or console (auto: JSON unless
    `stream`, default stderr, is a terminal). Calling it again replaces the setup."""
    out = stream or sys.stderr
    tty = out.isatty()
    use_json = fmt == "json" or (fmt == "auto" and not tty)
    # JSON escapes control characters itself; the console renderer needs them escaped.
    render: list[structlog.types.Processor] = (
        [structlog.processors.JSONRenderer(), _json_line] if use_json
        else [_escape_console, structlog.dev.ConsoleRenderer(colors=tty), _console_line]
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    handler = _Handler(out)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            _foreign_record,
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _drop_secrets,
            structlog.processors.format_exc_info,
            *render,
        ],
    ))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    root.setLevel(numeric)
    # httpx logs every request at INFO: 70% of a worker's lines, each a copy of what the
    # product logs itself (`pps.write`, step results), and their formatting cost CPU on
    # every appliance call. They still show at DEBUG.
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.DEBUG if numeric <= logging.DEBUG
                                          else max(numeric, logging.WARNING))
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )


NOISY_LOGGERS = ("httpx", "httpcore")


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)  # type: ignore[no-any-return]


_PIPELINE_ERROR = "of pipeline caused error: "  # redis-py's prefix for an error in a pipeline


def error_code(exc: BaseException) -> str:
    """`ResponseError: NOGROUP No such key...` -> `ResponseError:NOGROUP` (type and the first
    word of the message, which for Redis errors is the error code; a pipeline's prefix
    `Command # 1 (XACK ...) of pipeline caused error:` is skipped)."""
    text = str(exc)
    if _PIPELINE_ERROR in text:  # followed by the original args as a tuple: ("...",)
        text = text.split(_PIPELINE_ERROR, 1)[1].lstrip("(\"' ")
    return f"{type(exc).__name__}:{text.split(' ', 1)[0]}"


class ChangeLog:
    """When a recurring failure deserves a log line: when it starts, when it changes (another
    error), when it ends. Never once per attempt: a fault that lasts must not flood the log."""

    def __init__(self) -> None:
        self._failing: dict[str, str] = {}

    def failing(self, source: str, exc: BaseException) -> bool:
        """Record a failure of `source`; True when it is news (log it)."""
        code = error_code(exc)
        news = self._failing.get(source) != code
        self._failing[source] = code
        return news

    def recovered(self, source: str) -> bool:
        """Record a success of `source`; True when it had been failing (log the recovery)."""
        return self._failing.pop(source, None) is not None
