"""The notifier: job events (the `events` stream) become Slack posts and edits.

- `loop`: `Notifier`, the consume loop with its retries and Redis-outage backoff.
- `card_writer`: `CardWriter`, what one event posts (card, thread reply, gate message), each
  at most once.
- `dataloss_alert`: `DataLossAlert`, the channel alert when Redis lost its data.
- `home`: `HomePublisher`, the App Home tab published on open and republished for recent
  viewers when a job changes state (paced per user).
- `escalation`: `EscalationPoster`, the escalation posts (called by `CardWriter`).
"""

from bot.notifier.card_writer import CardWriter
from bot.notifier.dataloss_alert import DataLossAlert
from bot.notifier.home import HomePublisher
from bot.notifier.loop import Notifier

__all__ = ["CardWriter", "DataLossAlert", "HomePublisher", "Notifier"]
