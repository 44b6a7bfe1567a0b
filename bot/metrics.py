"""Prometheus metrics of the bot process, served at `GET /metrics`."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

COMMANDS = Counter(
    "pps_slack_commands_total", "Slash commands handled, by verb and outcome", ["verb", "outcome"]
)
ACK_SECONDS = Histogram(
    "pps_slack_command_ack_seconds",
    "Time from receiving a slash command to its ack body",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 3.0),
)
ACTIONS = Counter("pps_slack_actions_total", "Button clicks, by action and outcome",
                  ["action", "outcome"])
SLACK_CALLS = Counter("pps_slack_api_calls_total", "Web API calls, by method and outcome",
                      ["method", "outcome"])
WORKERS_ALIVE = Gauge("pps_workers_alive",
                      "Workers seen within the last three leases (read when scraped)")
NOTIFIER_EVENTS = Counter("pps_notifier_events_total", "Job events handled by the notifier",
                          ["kind", "outcome"])


def render() -> tuple[bytes, str]:
    """The exposition body and its content type."""
    return generate_latest(), CONTENT_TYPE_LATEST
