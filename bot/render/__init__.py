"""Slack messages built from jobs: every renderer returns a `limits.Message` (valid Block Kit
within Slack's limits, with a plain-text fallback). No I/O.

- `card`: the status card, posted once and edited in place (`card.card`).
- `thread`: one thread reply per notable transition.
- `gates`: approval requests, operator-assisted requests, and their decided forms.
- `summary`: the final summary and the dry-run plan.
- `commands`: replies to `/pps` commands.
- `fleet`: the fleet at a glance (one cluster's facts, laid out within a block budget), for
  `/pps clusters` and the App Home tab; `home`: the Home tab's view (`views.publish`).
- `escalation`: the call to on-call, its note in the card's thread, the all-clear.
- `common`: words and icons shared by the renderers; `limits`: Slack's limits and escaping.
"""

from bot.render.commands import render_reply
from bot.render.gates import gate_message
from bot.render.limits import Message, escape
from bot.render.summary import dry_run_plan, final_summary
from bot.render.thread import ThreadPost, thread_post

__all__ = [
    "Message",
    "ThreadPost",
    "dry_run_plan",
    "escape",
    "final_summary",
    "gate_message",
    "render_reply",
    "thread_post",
]
