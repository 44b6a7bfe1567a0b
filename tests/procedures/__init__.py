"""The procedure tables (jobs/procedures)."""
