"""What Slack can ask: the `/pps` grammar, button actions, authorization. No appliance I/O."""
