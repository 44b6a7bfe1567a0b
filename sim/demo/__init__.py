"""sim/demo."""
