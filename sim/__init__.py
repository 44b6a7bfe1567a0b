"""Stand-ins for tests, benchmarks and the demo: a PPS cluster simulator and a Slack stand-in.

Imports nothing of the product: it is an independent implementation of the published
contracts (../shared/PPS-API.md and Slack's Web API subset).
"""
