"""Beyond PPS-API.md: answers a real appliance may still give, which must not stop a job.

Each quirk alone, on an active/passive cluster with a VIP (the shape that reads the most).
"""

from __future__ import annotations

import pytest
from contract_fake import VIP, Knobs
from contract_support import TARGET, Start, installs, permission_writes, undocumented

from jobs.rules.model import State


@pytest.mark.parametrize("quirk", ["status-case", "uptime-seconds", "fqdn-host", "member-case"])
async def test_quirk_does_not_stop_the_upgrade(contract: Start, quirk: str) -> None:
    knobs = Knobs(quirks=frozenset({quirk}))
    run = await contract("active-passive", ["qk-a", "qk-b"], vip=True, active=1, knobs=knobs)
    done = await run.happy()
    assert done.state is State.SUCCEEDED, done.error
    assert undocumented(run.fake.calls) == []
    assert installs(run.fake.calls) == [("qk-b", 202)]
    assert [p for p, _, _ in permission_writes(run.fake.calls)] == [VIP, VIP]
    assert all(n.build == TARGET for n in run.fake.nodes.values())
    flips = [(f["from"], f["to"]) for f in done.outputs.watch["vip"]["flips"]]
    assert flips == [("qk-b", "qk-a"), ("qk-a", "qk-b")]  # node names, as in the inventory
