"""Reading Slack messages in tests: their buttons, and anything as searchable JSON text."""

from __future__ import annotations

import json
from typing import Any, Protocol


class HasBlocks(Protocol):
    """A message of any fake Slack: it keeps the Block Kit blocks it was posted with."""

    blocks: list[dict[str, Any]]


def blob(x: Any) -> str:
    """`x` as JSON text with emoji and accents kept (to search blocks for words)."""
    return json.dumps(x, ensure_ascii=False)


def buttons(msg: HasBlocks) -> list[dict[str, Any]]:
    """The elements of the message's `actions` blocks, in order."""
    return [e for b in msg.blocks if b.get("type") == "actions" for e in b.get("elements", [])]


def has_buttons(msg: HasBlocks) -> bool:
    """True while the message offers buttons (a decided gate's message has none)."""
    return bool(buttons(msg))
