"""jobs/rules."""
