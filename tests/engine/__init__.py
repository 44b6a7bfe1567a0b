"""The job engine: the store, the runner, the worker and JobService, on stub steps."""
