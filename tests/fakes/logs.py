"""`Recorder`: stands in for a module's structlog logger and keeps what was logged."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


class Recorder:
    """Records `(level, event, fields)` for every call (`log.info("event", k=v)`, ...).

    Patch it over a module's `log` (`monkeypatch.setattr(module, "log", Recorder())`).
    """

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def __getattr__(self, level: str) -> Callable[..., None]:
        def log(event: str, *args: Any, **kw: Any) -> None:
            if level == "exception":  # what structlog would render: the current exception
                kw = {**kw, "exc": f"{type(sys.exc_info()[1]).__name__}: {sys.exc_info()[1]}"}
            self.lines.append((level, event, kw))

        return log

    def events(self, containing: str = "") -> list[str]:
        """The events logged so far (those containing `containing`), in order."""
        return [event for _, event, _ in self.lines if containing in event]

    def count(self, text: str) -> int:
        """How many events contain `text`."""
        return len(self.events(text))
