"""The upgrade engine: job model, Redis store/queue/timers/lease, KB12940 steps, PPS client.

Nothing in this package imports Slack, `bot` or `handlers`.
"""
