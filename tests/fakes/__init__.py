"""Shared fakes and builders for the tests (never shipped in the wheel).

- `clock`: `FakeClock`.
- `node`: a fake node's timeline (phases of an upgrade, boot, builds at time t).
- `appliance`: `FakeCluster`, an in-memory `Appliance` for a whole cluster.
- `harness`: drives the real steps of a job on a `FakeCluster`.
"""
