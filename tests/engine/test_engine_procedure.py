"""The whole KB12940 procedure with the real steps (jobs.steps.UPGRADE.impls) on FakeCluster:
standalone, active/passive (with a VIP flip), active/active. FakeClock, no sleeps."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis
from engine_support import APPROVER, OTHER, RUNNING, TARGET_BUILD, Engine, new_fake

from jobs.appliance.protocol import Appliance
from jobs.config.inventory import Cluster, Inventory
from jobs.config.settings import Settings
from jobs.procedures import UPGRADE
from jobs.rules.events import EventKind
from jobs.rules.model import State, Step
from jobs.store.keys import Keys
from tests.fakes.appliance import FakeCluster
from tests.fakes.clock import FakeClock


def fake_factory(clock: FakeClock, fakes: dict[str, FakeCluster]) -> Any:
    def make(cluster: Cluster) -> Appliance:
        if cluster.name not in fakes:
            fakes[cluster.name] = new_fake(cluster, clock)
        return fakes[cluster.name]

    return make


def side_effects(fake: FakeCluster) -> list[tuple[str, Any]]:
    return [
        (c["method"], c["arg"])
        for c in fake.calls
        if c["method"] in ("set_login_permission", "install") and c.get("outcome") == "ok"
    ]


@pytest.mark.parametrize(
    ("cluster", "nodes"),
    [
        ("solo", ["solo-1"]),
        ("east", ["east-a", "east-b"]),
        ("mesh", ["mesh-1", "mesh-2", "mesh-3"]),
    ],
)
async def test_full_procedure_with_the_real_steps(
    redis: aioredis.Redis,
    keys: Keys,
    settings: Settings,
    inventory: Inventory,
    clock: FakeClock,
    cluster: str,
    nodes: list[str],
) -> None:
    fakes: dict[str, FakeCluster] = {}
    engine = await Engine(
        redis, keys, settings, inventory, clock, UPGRADE.impls, fake_factory(clock, fakes)
    ).start()
    job = await engine.create(cluster)
    await engine.drain()
    gated = await engine.job(job.id)
    assert (gated.state, gated.step) == (State.AWAITING_APPROVAL, Step.GATE_DISABLE)
    opened = await engine.events(job.id, EventKind.GATE_OPENED)
    assert opened[0].data["evidence"]["sessions"] == 412
    await engine.service.approve(job.id, await engine.gate(job.id), APPROVER)
    at_enable = await engine.run_until(job.id, lambda j: j.open_gate() is not None, step=5.0)
    assert at_enable.step is Step.GATE_ENABLE and at_enable.logins_disabled
    fake = fakes[cluster]
    assert all(fake.build_of(n) == TARGET_BUILD for n in nodes)
    # The settle wait lasted PPS_SETTLE_SECONDS after the last rejoin.
    settle = at_enable.step_record(Step.SETTLE)
    assert settle.duration is not None and settle.duration >= settings.PPS_SETTLE_SECONDS
    await engine.service.approve(job.id, await engine.gate(job.id), OTHER)
    done = await engine.run_until(job.id, lambda j: j.terminal)
    assert done.state is State.SUCCEEDED and done.settled, done.error
    assert side_effects(fake) == [
        ("set_login_permission", "enabled=False"),
        ("install", "pps-9.1R18-package.pkg"),
        ("set_login_permission", "enabled=True"),
    ]
    assert fake.count("export_config") == 2
    summary = (await engine.events(job.id, EventKind.FINISHED))[0].data["summary"]
    assert summary["builds_after"] == {n: TARGET_BUILD for n in nodes}
    assert summary["builds_before"] == {n: RUNNING for n in nodes}
    assert len(summary["backups"]) == 2
    assert summary["logins_disabled_seconds"] > settings.PPS_SETTLE_SECONDS
    progress = [e.data["text"] for e in await engine.events(job.id, EventKind.PROGRESS)]
    assert progress, "the reboot watch posts what it sees"
    if cluster == "east":
        assert any("VIP" in t for t in progress), progress
    assert await redis.exists(keys.cluster(cluster)) == 0
