"""jobs/worker."""
