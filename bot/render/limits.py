"""Slack's Block Kit limits (SLACK.md), escaping, and the `Message` every renderer returns.

The one place for these facts: every renderer builds blocks through the helpers here, so
text is clipped to the field limits, the 50-block cap is enforced and every message carries
a short plain-text fallback. Outside strings (appliance answers, inventory names, user
input) go through `escape`; mentions are built from ids (`mention`, `channel_link`); and
`message` escapes, as a last line of defence, any angle-bracket sequence left in a mrkdwn
text that is not a user, channel or user-group mention (no `<!here>`, no link, ever).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
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
_USER_ID = re.compile(r"[UW][A-Z0-9_]+")
_CHANNEL_ID = re.compile(r"[CG][A-Z0-9_]+")
_GROUP_ID = re.compile(r"S[A-Z0-9_]+")
_MENTION = re.compile(r"<(?:@([UW][A-Z0-9_]+)|#([CG][A-Z0-9_]+))>")
# What may stay a Slack control sequence in a finished message: a user or channel mention
# or a user-group mention. Anything else in angle brackets (`<!here>`, `<!channel>`, a link)
# is escaped, whatever a renderer let through.
_ALLOWED_TOKEN = re.compile(r"@[UW][A-Z0-9_]+|#[CG][A-Z0-9_]+|!subteam\^S[A-Z0-9_]+")
_ANGLED = re.compile(r"<([^<>]*)>")


def escape(text: str) -> str:
    """Escape outside text for mrkdwn: `&`, `<`, `>` (no mention, link or broadcast)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mention(user_id: str) -> str:
    """`<@U…>` for a well-formed user id; anything else shown escaped, never as markup."""
    return f"<@{user_id}>" if _USER_ID.fullmatch(user_id) else escape(user_id)


def group_mention(group_id: str) -> str:
    """`<!subteam^S…>` for a well-formed user-group id, else nothing."""
    return f"<!subteam^{group_id}>" if _GROUP_ID.fullmatch(group_id) else ""


def channel_link(channel_id: str) -> str:
    """`<#C…>` for a well-formed channel id; anything else shown escaped."""
    return f"<#{channel_id}>" if _CHANNEL_ID.fullmatch(channel_id) else escape(channel_id)


def escape_keep_mentions(
    text: str, users: Collection[str] | None = None, *, channels: bool = False
) -> str:
    """Escape text that mixes the bot's words with outside strings, keeping the mentions
    the bot itself makes: of the `users` given (any well-formed user id when None) and, with
    `channels`, channel links. Everything else, broadcasts and links included, is escaped."""
    out, last = [], 0
    for m in _MENTION.finditer(text):
        user, channel = m.group(1), m.group(2)
        keep = (user is not None and (users is None or user in users)) or (
            channel is not None and channels)
        if keep:
            out.append(escape(text[last : m.start()]))
            out.append(m.group(0))
            last = m.end()
    out.append(escape(text[last:]))
    return "".join(out)


def neutralize(text: str) -> str:
    """The last line of defence: escape any angle-bracket sequence that is not a mention."""
    def keep_or_escape(m: re.Match[str]) -> str:
        return m.group(0) if _ALLOWED_TOKEN.fullmatch(m.group(1)) else escape(m.group(0))

    kept = _ANGLED.sub(keep_or_escape, text)
    # A `<` left over has no closing `>` of its own (a clipped mention): escape it too.
    return re.sub(r"<(?!(?:" + _ALLOWED_TOKEN.pattern + r")>)", "&lt;", kept)


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
    text: str, blocks: Sequence[Block], metadata: dict[str, Any] | None = None,
    fallback_limit: int = MAX_FALLBACK_TEXT,
) -> Message:
    """Finish a message: cap at 50 blocks (noting the cut), validate, clip the fallback
    (to `fallback_limit` characters: short, it is the notification's text)."""
    bl = list(blocks)
    if len(bl) > MAX_BLOCKS:
        cut = len(bl) - (MAX_BLOCKS - 1)
        bl = [*bl[: MAX_BLOCKS - 1], context(f"_{cut} more blocks not shown._")]
    # to_dict() runs slack_sdk's validators (field lengths, element counts) on every block.
    dicts = [_neutralized(b.to_dict()) for b in bl]
    return Message(text=fit(clip(text, fallback_limit), fallback_limit) or " ", blocks=dicts,
                   metadata=metadata)


def _neutralized(node: Any) -> Any:
    """`neutralize` every mrkdwn text of a block (plain text is never parsed by Slack)."""
    if isinstance(node, list):
        return [_neutralized(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _neutralized(v) for k, v in node.items()}
    if node.get("type") == "mrkdwn" and isinstance(node.get("text"), str):
        out["text"] = fit(node["text"], MAX_SECTION_TEXT)
    return out


def fit(text: str, limit: int) -> str:
    """`neutralize(text)` within `limit` characters. A text clipped inside a mention grows
    when the broken `<` is escaped (`&lt;`): a reminder naming 450 approvers came out at
    3003 characters, and Slack refused it (`invalid_blocks`). Cut again, at a space."""
    out = neutralize(text)
    while len(out) > limit:
        cut = out.rfind(" ", 0, limit - 1)
        out = neutralize(out[: cut if cut > 0 else limit - 1] + ELLIPSIS)
    return out

