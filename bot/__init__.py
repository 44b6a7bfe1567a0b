"""Process entry points and wiring: the Bolt app, rendering, the notifier, the CLI."""
