"""Acceptance: `ppsbot bot` and `ppsbot worker` as processes, a strict fake Slack, the simulator."""
