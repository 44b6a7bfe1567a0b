"""jobs/appliance."""
