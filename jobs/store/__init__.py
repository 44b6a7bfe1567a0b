"""jobs/store."""
