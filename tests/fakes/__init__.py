"""Shared fakes and builders for the tests (never shipped in the wheel).

- `clock`: `FakeClock`.
- `node`: a fake node's timeline (phases of an upgrade, boot, builds at time t).
- `appliance`: `FakeCluster`, an in-memory `Appliance` for a whole cluster.
- `memory_store`: `MemoryStore`, the store Protocols of `jobs.store.ports` in memory.
- `harness`: drives the real steps of a job on a `FakeCluster` through the real rules.
"""
