"""Unit tests of the change records (jobs/report): pure, no Redis."""
