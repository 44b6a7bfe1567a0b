"""The App Home tab: the fleet at a glance, as a `views.publish` view (at most 100 blocks).

The same for every viewer, so the bot renders it once per round of publishing.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.models.views import View

from bot.render.fleet import fleet_blocks, summary_line, when
from bot.render.limits import MAX_HOME_BLOCKS, context, header, section
from jobs.fleet.view import FleetFacts

HOME_TITLE = "PPS fleet"


def home_view(facts: FleetFacts, team_url: str | None = None) -> dict[str, Any]:
    """The Home tab's view: a summary, then every cluster within the block limit."""
    head = [
        header(HOME_TITLE),
        section(summary_line(facts)),
        context(f"As of {when(facts.at, facts.at)}. Refreshed when a job changes state or a "
                "poll sees a change; `/pps clusters` shows the same in a channel."),
    ]
    blocks = [*head, *fleet_blocks(facts, MAX_HOME_BLOCKS - len(head), team_url)]
    # to_dict() runs slack_sdk's validators: block fields and the 100-block cap of a view.
    return dict(View(type="home", blocks=blocks).to_dict())
