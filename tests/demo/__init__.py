"""The demo (sim.demo, `ppsbot demo`), its page, compose file and docs."""
