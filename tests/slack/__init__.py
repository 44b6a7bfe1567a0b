"""The Slack side: the bot, handlers, rendering, the notifier and the Slack stand-in."""
