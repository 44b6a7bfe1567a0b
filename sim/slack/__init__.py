"""The Slack stand-in: a Web API subset, signed requests to the bot, Socket Mode, and a page.

- `standin`: `create_standin_app`, the server; `webapi`: the Web API; `store`: what it holds.
- `signing`: signed slash commands and clicks sent to the bot; `socket_mode`: the WebSocket side.
- `control`: the JSON control API the tests and the page use; `blocks`: Block Kit checks.
- `channel_page`: the browser view of a channel (`static/`).
- `files`: Slack's external file upload; `webhook`: a receiver of escalation webhooks.
"""

from sim.slack.standin import create_standin_app
from sim.slack.store import StandinStore

__all__ = ["StandinStore", "create_standin_app"]
