"""Structured logging (structlog): JSON in production, console on a terminal."""

from __future__ import annotations

import logging
import sys

import structlog

_SECRET_KEYS = ("password", "token", "secret", "api_key", "authorization")


def _drop_secrets(
    _logger: object, _name: str, event: structlog.types.EventDict
) -> structlog.types.EventDict:
    for k in list(event):
        if any(s in k.lower() for s in _SECRET_KEYS):
            event[k] = "***"
    return event


def configure_logging(level: str = "INFO", fmt: str = "auto") -> None:
    """Configure structlog once per process; `fmt` is auto, json or console."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    logging.basicConfig(level=level.upper(), stream=sys.stderr, format="%(message)s")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _drop_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


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
