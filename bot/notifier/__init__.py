"""bot/notifier."""
