"""sim/slack."""
