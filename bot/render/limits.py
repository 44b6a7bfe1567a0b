"""Slack's Block Kit limits (SLACK.md), escaping, and the `Message` every renderer returns.

The one place for these facts: every renderer builds blocks through the helpers here, so
text is clipped to the field limits, user text is escaped, the 50-block cap is enforced
and every message carries a short plain-text fallback.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

MAX_BLOCKS = 50
MAX_HOME_BLOCKS = 100  # a view (the App Home tab, a modal)
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_ID = 255  # action_id, block_id
MAX_ACTIONS_ELEMENTS = 25
MAX_CONTEXT_ELEMENTS = 10
MAX_MESSAGE_TEXT = 40000
# chat.update trims fallback text at about 4000 characters; notifications show far less.
MAX_FALLBACK_TEXT = 300

ELLIPSIS = "…"
_MENTION = re.compile(r"<(?:@[UW][A-Z0-9_]+|#C[A-Z0-9_]+)>")


def escape(text: str) -> str:
    """Escape user-supplied text for mrkdwn: `&`, `<`, `>` (no injected `<!channel>`)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_keep_mentions(text: str) -> str:
    """Escape the bot's own messages but keep well-formed user and channel mentions."""
    out, last = [], 0
    for m in _MENTION.finditer(text):
        out.append(escape(text[last : m.start()]))
        out.append(m.group(0))
        last = m.end()
    out.append(escape(text[last:]))
    return "".join(out)


def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, ending in an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def section(text: str, block_id: str | None = None) -> SectionBlock:
    """A mrkdwn section (text already escaped), clipped to the section limit."""
    return SectionBlock(text=MarkdownTextObject(text=clip(text, MAX_SECTION_TEXT)),
                        block_id=block_id)


def header(text: str) -> HeaderBlock:
    return HeaderBlock(text=clip(text, MAX_HEADER_TEXT))


def context(*texts: str) -> ContextBlock:
    """A context line of mrkdwn pieces (at most 10, each clipped)."""
    pieces = [t for t in texts if t][:MAX_CONTEXT_ELEMENTS]
    return ContextBlock(
        elements=[MarkdownTextObject(text=clip(t, MAX_SECTION_TEXT)) for t in pieces or [" "]]
    )


def divider() -> DividerBlock:
    return DividerBlock()


def sections_for_lines(lines: Sequence[str], limit: int = MAX_SECTION_TEXT) -> list[SectionBlock]:
    """Pack lines into as few sections as fit the per-section limit."""
    blocks: list[SectionBlock] = []
    cur: list[str] = []
    size = 0
    for line in lines:
        line = clip(line, limit)
        if cur and size + 1 + len(line) > limit:
            blocks.append(section("\n".join(cur)))
            cur, size = [], 0
        cur.append(line)
        size += len(line) + 1
    if cur:
        blocks.append(section("\n".join(cur)))
    return blocks


@dataclass(frozen=True)
class Message:
    """A rendered message: fallback `text`, `blocks` (dicts), optional `metadata`."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, Any] | None = None

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for chat.postMessage / chat.update / chat.postEphemeral."""
        kw: dict[str, Any] = {"text": self.text, "blocks": self.blocks}
        if self.metadata is not None:
            kw["metadata"] = self.metadata
        return kw


def message(
    text: str, blocks: Sequence[Block], metadata: dict[str, Any] | None = None
) -> Message:
    """Finish a message: cap at 50 blocks (noting the cut), validate, clip the fallback."""
    bl = list(blocks)
    if len(bl) > MAX_BLOCKS:
        cut = len(bl) - (MAX_BLOCKS - 1)
        bl = [*bl[: MAX_BLOCKS - 1], context(f"_{cut} more blocks not shown._")]
    # to_dict() runs slack_sdk's validators (field lengths, element counts) on every block.
    dicts = [b.to_dict() for b in bl]
    return Message(text=clip(text, MAX_FALLBACK_TEXT) or " ", blocks=dicts, metadata=metadata)

