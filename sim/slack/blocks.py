"""The stand-in's Block Kit check: what Slack would refuse with `invalid_blocks`.

Slack's own side of the contract, kept apart from the product on purpose (the stand-in
imports nothing of the bot): every block must parse with `slack_sdk.models`, survive a
round trip unchanged (no unknown fields), pass the model validators (section 3000 chars,
header 150, button text 75, value 2000, ids 255, 25 / 10 elements per actions / context
block), and a message has at most 50 blocks and 40000 characters of text. A Home tab view
(`views.publish`) has the same block rules and at most 100 blocks.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block

MAX_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_TEXT = 40000
MAX_PRIVATE_METADATA = 3000
VIEW_FIELDS = frozenset({"type", "blocks", "private_metadata", "callback_id", "external_id"})


class MessageInvalid(ValueError):
    """A message Slack would refuse; `error` is Slack's error code."""

    def __init__(self, error: str, detail: str) -> None:
        super().__init__(f"{error}: {detail}")
        self.error = error
        self.detail = detail


def check_blocks(blocks: Any, limit: int = MAX_BLOCKS) -> None:
    """Raise `MessageInvalid("invalid_blocks", ...)` unless `blocks` is valid Block Kit."""
    if not isinstance(blocks, list):
        raise MessageInvalid("invalid_blocks", "blocks must be an array")
    if len(blocks) > limit:
        raise MessageInvalid("invalid_blocks", f"{len(blocks)} blocks (max {limit})")
    for i, raw in enumerate(blocks):
        if not isinstance(raw, dict):
            raise MessageInvalid("invalid_blocks", f"blocks[{i}] is not an object")
        try:
            parsed = Block.parse(raw)
            if parsed is None:
                raise MessageInvalid("invalid_blocks", f"blocks[{i}]: unknown type")
            again = parsed.to_dict()
        except SlackObjectFormationError as exc:
            raise MessageInvalid("invalid_blocks", f"blocks[{i}]: {exc}") from None
        except (KeyError, TypeError, AttributeError) as exc:
            raise MessageInvalid("invalid_blocks", f"blocks[{i}]: malformed ({exc})") from None
        if again != raw:
            raise MessageInvalid("invalid_blocks", f"blocks[{i}]: unknown or misspelt fields")


def check_message(args: dict[str, Any], *, update: bool = False) -> None:
    """Validate the message part of chat.postMessage / chat.update / chat.postEphemeral."""
    text = args.get("text")
    blocks = args.get("blocks")
    if isinstance(blocks, str):
        raise MessageInvalid("invalid_blocks_format", "blocks must be JSON, not a string")
    if blocks is not None:
        check_blocks(blocks)
    if text is not None and not isinstance(text, str):
        raise MessageInvalid("invalid_arguments", "text must be a string")
    if not text and not blocks and not update:
        raise MessageInvalid("no_text", "text or blocks required")
    if text and len(text) > MAX_TEXT:
        raise MessageInvalid("msg_too_long", f"text has {len(text)} characters")
    meta = args.get("metadata")
    if meta is not None and (
        not isinstance(meta, dict)
        or not isinstance(meta.get("event_type"), str)
        or not isinstance(meta.get("event_payload"), dict)
    ):
        raise MessageInvalid("invalid_metadata_format", "metadata needs event_type and payload")


def check_home_view(view: Any) -> None:
    """Validate the `view` of `views.publish` as Slack would (`invalid_arguments`)."""
    if isinstance(view, str):
        raise MessageInvalid("invalid_arguments", "view must be a JSON object")
    if not isinstance(view, dict):
        raise MessageInvalid("invalid_arguments", "view is required")
    if view.get("type") != "home":
        raise MessageInvalid("invalid_arguments", "view.type must be home")
    unknown = set(view) - VIEW_FIELDS
    if unknown:
        raise MessageInvalid("invalid_arguments", f"view has unknown fields {sorted(unknown)}")
    blocks = view.get("blocks")
    if not isinstance(blocks, list) or not blocks:
        raise MessageInvalid("invalid_arguments", "view.blocks must be a non-empty array")
    meta = view.get("private_metadata")
    if meta is not None and (not isinstance(meta, str) or len(meta) > MAX_PRIVATE_METADATA):
        raise MessageInvalid("invalid_arguments", "private_metadata too long")
    try:
        check_blocks(blocks, MAX_VIEW_BLOCKS)
    except MessageInvalid as exc:
        raise MessageInvalid("invalid_arguments", exc.detail) from None
