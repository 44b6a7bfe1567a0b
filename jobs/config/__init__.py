"""jobs/config."""
