"""Where requests may come from: the workspace the bot is installed in (its `team_id`, from
auth.test at start-up) and, when `PPS_ALLOWED_CHANNELS` is set, those channels only.

`OriginPolicy.refusal` answers for a command or a click; the bot refuses before any
handler runs. Until auth.test has answered the installed team is unknown and requests are
refused (fail closed), with a message saying so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from jobs.config.inventory import Inventory
from jobs.config.settings import Settings, split_ids

UNKNOWN_TEAM = ("I could not confirm my own Slack workspace yet (auth.test has not answered); "
                "try again in a minute.")
OTHER_TEAM = "This app serves one workspace only; requests from other workspaces are refused."


def request_team(body: Mapping[str, Any]) -> str | None:
    """The workspace a command, click or event came from."""
    team = body.get("team")
    if isinstance(team, Mapping) and team.get("id"):
        return str(team["id"])
    if body.get("team_id"):
        return str(body["team_id"])
    user = body.get("user")
    if isinstance(user, Mapping) and user.get("team_id"):
        return str(user["team_id"])
    return None


def request_channel(body: Mapping[str, Any]) -> str | None:
    """The channel a command was typed in or a clicked message lives in."""
    if body.get("channel_id"):
        return str(body["channel_id"])
    channel = body.get("channel")
    if isinstance(channel, Mapping) and channel.get("id"):
        return str(channel["id"])
    container = body.get("container")
    if isinstance(container, Mapping) and container.get("channel_id"):
        return str(container["channel_id"])
    return None


class OriginPolicy:
    """Refuses requests from another workspace and, if limited, from other channels."""

    def __init__(self, settings: Settings, installed_team: Callable[[], str | None]) -> None:
        self.allowed = split_ids(settings.PPS_ALLOWED_CHANNELS)
        self.installed_team = installed_team

    def refusal(self, team: str | None, channel: str | None, *, in_channel: bool = True
                ) -> str | None:
        """Why a request from (`team`, `channel`) is refused, or None. `in_channel`: the
        request is a command or a click (the channel check applies)."""
        mine = self.installed_team()
        if mine is None:
            return UNKNOWN_TEAM
        if team != mine:
            return OTHER_TEAM
        if in_channel and self.allowed and channel not in self.allowed:
            where = ", ".join(f"<#{c}>" for c in self.allowed)
            return f"`/pps` and its buttons work only in {where}; this channel is not one of them."
        return None


def origin_problems(settings: Settings, inventory: Inventory) -> list[str]:
    """Settings under which gate buttons would be refused: a cluster's cards go to a
    channel that `PPS_ALLOWED_CHANNELS` leaves out."""
    allowed = split_ids(settings.PPS_ALLOWED_CHANNELS)
    if not allowed:
        return []
    out = []
    for c in inventory.clusters.values():
        channel = c.channel or settings.PPS_CHANNEL
        if channel and channel not in allowed:
            out.append(f"settings: cluster {c.name} posts its cards and approval requests to "
                       f"{channel}, which is not in PPS_ALLOWED_CHANNELS: clicks there would "
                       "be refused")
    return out
