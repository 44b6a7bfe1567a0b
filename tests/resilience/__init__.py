"""Resilience: workers and notifier across Redis restarts, outages, data loss, a full Redis."""
