"""bot/render."""
