"""sim/pps."""
