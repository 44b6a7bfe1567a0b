"""The real engine against a strict fake appliance: the four topologies, end to end.

Each run approves both gates as a non-requester and asserts, from the fake's own record:
only documented calls; the install on the right node exactly once; disable and enable
exactly once, through the VIP when one is set (DESIGN §4.7); the job succeeded.
"""

from __future__ import annotations

from pathlib import Path

import certifi

from jobs.rules.events import EventKind
from jobs.rules.model import Job, State
from tests.contract.contract_fake import VIP, export_bytes
from tests.contract.contract_support import (
    INSTALL,
    RUNNING,
    TARGET,
    Run,
    Start,
    installs,
    permission_writes,
    undocumented,
    user_reads,
)

OFF = {"user-login-permission": False}
ON = {"user-login-permission": True}
PAGES_412 = [{"number": "200", "start": s} for s in ("1", "201", "401")]  # DESIGN §4.9


def _succeeded(run: Run, done: Job) -> None:
    assert done.state is State.SUCCEEDED, done.error
    assert undocumented(run.fake.calls) == []
    assert {n: node.build for n, node in run.fake.nodes.items()} == {
        n: TARGET for n in run.fake.nodes
    }
    assert run.fake.login_permission is True
    sha = next(s for s, build in run.fake.packages.items() if build == TARGET)
    uploads = [c.body for c in run.fake.calls if c.method == "POST" and c.path == INSTALL]
    assert uploads == [{"package": sha}]  # the catalogue's file, byte for byte
    drift = done.outputs.drift  # the configuration tree, read before and after, all of it
    assert drift is not None and drift.status == "unchanged" and drift.compared == 5


def _backups_match(run: Run, done: Job, node: str) -> None:
    folder = Path(run.service.settings.PPS_BACKUP_DIR) / "ct" / done.id
    assert (folder / "system.cfg").read_bytes() == export_bytes(node, "system_config")
    assert (folder / "user.cfg").read_bytes() == export_bytes(node, "user_config")


async def test_standalone(contract: Start) -> None:
    run = await contract("standalone", ["solo"])
    done = await run.happy()
    _succeeded(run, done)
    calls = run.fake.calls
    assert installs(calls) == [("solo", 202)]
    assert permission_writes(calls) == [("solo", OFF, 200), ("solo", ON, 200)]
    reads = user_reads(calls)
    assert reads and all(port == "solo" for port, _ in reads)
    assert [q for _, q in reads[:3]] == PAGES_412  # then the next read starts over
    assert done.outputs.record["sessions"] == 412
    assert done.outputs.builds_before == {"solo": RUNNING}
    _backups_match(run, done, "solo")
    assert run.fake.timeline == ["solo: installing", "solo: down", "solo: rejoining", "solo: up"]


async def test_active_passive_with_vip_acts_on_the_node_behind_it(contract: Start) -> None:
    # The second node listed is the active one: only the VIP's host-name says so (§4.8).
    run = await contract("active-passive", ["ap-a", "ap-b"], vip=True, active=1)
    done = await run.happy()
    _succeeded(run, done)
    calls = run.fake.calls
    assert installs(calls) == [("ap-b", 202)]
    assert done.outputs.install_node == "ap-b"
    # Login permission read and changed through the VIP only (§4.7).
    assert permission_writes(calls) == [(VIP, OFF, 200), (VIP, ON, 200)]
    assert {port for port, _ in user_reads(calls)} == {VIP}
    _backups_match(run, done, "ap-b")
    vip_moves = [t for t in run.fake.timeline if t.startswith("vip:")]
    assert vip_moves == ["vip: ap-b -> ap-a", "vip: ap-a -> ap-b"]
    reboots = [t for t in run.fake.timeline if t.endswith("down")]
    assert reboots == ["ap-b: down", "ap-a: down"]
    progress = [
        e.data["text"]
        for e in await run.service.store.events(done.id)
        if e.kind is EventKind.PROGRESS
    ]
    assert any("VIP" in t and "ap-a" in t for t in progress), progress


async def test_active_passive_without_vip_first_node_is_active(contract: Start) -> None:
    run = await contract("active-passive", ["np-a", "np-b"])
    done = await run.happy()
    _succeeded(run, done)
    calls = run.fake.calls
    assert installs(calls) == [("np-a", 202)]
    assert permission_writes(calls) == [("np-a", OFF, 200), ("np-a", ON, 200)]
    assert {port for port, _ in user_reads(calls)} == {"np-a"}
    assert [t for t in run.fake.timeline if t.endswith("down")] == ["np-a: down", "np-b: down"]


async def test_active_active_three_nodes(contract: Start) -> None:
    # http:// nodes with a CA bundle configured: the bundle is simply not used.
    run = await contract(
        "active-active", ["aa-1", "aa-2", "aa-3"], cluster_edit={"tls_verify": certifi.where()}
    )
    done = await run.happy()
    _succeeded(run, done)
    calls = run.fake.calls
    assert [port for port, _ in installs(calls)] == ["aa-1"]
    assert permission_writes(calls) == [("aa-1", OFF, 200), ("aa-1", ON, 200)]
    assert [t for t in run.fake.timeline if t.endswith("down")] == [
        "aa-1: down",
        "aa-2: down",
        "aa-3: down",
    ]
    # Every node was watched through its reboot to the end.
    watch = done.outputs.watch["nodes"]
    assert all(w["rebooted"] and w["on_target"] and w["in_cluster"] for w in watch.values())
