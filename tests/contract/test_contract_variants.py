"""What PPS-API.md and DESIGN §4 allow an appliance to do differently, end to end.

Legacy-only login, expiring keys, fields left out, install answering 200, \\r\\n exports,
a catalogue with build numbers, and the [assumed] writes refused with 405 / 501.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from contract_fake import API, OPTIONAL, VIP, Knobs, export_bytes
from contract_support import (
    TARGET,
    Run,
    Start,
    installs,
    permission_writes,
    undocumented,
    user_reads,
)

from jobs.rules.events import EventKind
from jobs.rules.model import GateKind, Job, State, Step

OFF = {"user-login-permission": False}
ON = {"user-login-permission": True}


def _ok(run: Run, done: Job, allow: frozenset[int] = frozenset()) -> None:
    assert done.state is State.SUCCEEDED, done.error
    assert undocumented(run.fake.calls, allow) == []
    assert all(n.build == TARGET for n in run.fake.nodes.values())
    assert run.fake.login_permission is True


async def test_legacy_auth_only(contract: Start) -> None:
    """realm_auth answers 404 (before 22.7R2.1): every login falls back to GET auth."""
    run = await contract("active-passive", ["lg-a", "lg-b"], vip=True, knobs=Knobs(login="legacy"))
    done = await run.happy()
    _ok(run, done)
    logins = [(c.port, c.method, c.status) for c in run.fake.calls if c.auth == "admin"]
    # Each login: realm_auth first (404), then the legacy call on the same port.
    assert logins[0::2] == [(p, "POST", 404) for p, _, _ in logins[0::2]]
    assert logins[1::2] == [(p, "GET", 200) for p, _, _ in logins[0::2]]
    assert installs(run.fake.calls) == [("lg-a", 202)]


async def test_keys_expire_and_are_renewed(contract: Start) -> None:
    run = await contract("standalone", ["ex-1"], knobs=Knobs(key_ttl=0.25))
    done = await run.happy()
    _ok(run, done)
    calls = run.fake.calls
    refused = [c for c in calls if c.status == 401]
    assert any(c.auth == "stale-key" for c in refused)
    # Every 401 is followed on that port by a fresh login, then the call again.
    for i, c in enumerate(calls):
        if c.status == 401:
            later = [d for d in calls[i + 1 :] if d.port == c.port]
            assert later[0].path == API + "realm_auth" and later[0].status == 200
            assert (later[1].method, later[1].path) == (c.method, c.path)
    assert installs(calls) == [("ex-1", 202)]
    assert permission_writes(calls) == [("ex-1", OFF, 200), ("ex-1", ON, 200)]


async def test_optional_fields_missing_install_200_crlf_exports(contract: Start) -> None:
    """No rollback partition, no is-last-record / total-returned / notes / dates; 400 users."""
    knobs = Knobs(omit=OPTIONAL, install_status=200, crlf=True, sessions=400)
    run = await contract("active-passive", ["om-a", "om-b"], vip=True, rollback=None, knobs=knobs)
    done = await run.happy()
    _ok(run, done)
    assert installs(run.fake.calls) == [("om-a", 200)]
    assert permission_writes(run.fake.calls) == [(VIP, OFF, 200), (VIP, ON, 200)]
    # Without is-last-record, paging stops when the total matched is reached (§4.9).
    reads = [q for _, q in user_reads(run.fake.calls)]
    assert reads[:3] == [
        {"number": "200", "start": "1"},
        {"number": "200", "start": "201"},
        {"number": "200", "start": "1"},
    ]
    assert done.outputs.record["sessions"] == 400
    assert all(n["rollback_build"] is None for n in done.outputs.record["nodes"].values())
    folder = Path(run.service.settings.PPS_BACKUP_DIR) / "ct" / done.id  # \r\n exports decoded
    assert (folder / "system.cfg").read_bytes() == export_bytes("om-a", "system_config")
    assert (folder / "user.cfg").read_bytes() == export_bytes("om-a", "user_config")


async def test_catalogue_with_build_numbers(contract: Start) -> None:
    versions = ("9.1R17 (build 27583)", "9.1R18 (build 29865)")
    run = await contract("standalone", ["cb-1"], versions=versions)
    done = await run.happy()
    _ok(run, done)
    assert done.target == "9.1R18 (build 29865)"


async def test_catalogue_build_number_must_match(contract: Start) -> None:
    """§4.6: the package installs build 29865, the catalogue promises 29999: not done."""
    versions = ("9.1R17 (build 27583)", "9.1R18 (build 29999)")
    run = await contract("standalone", ["bm-1"], versions=versions, PPS_REBOOT_TIMEOUT_SECONDS=2.0)
    job = await run.create()
    await run.approve_at(job.id, Step.GATE_DISABLE)
    failed = await run.until(job.id, lambda j: j.state is State.FAILED)
    assert "did not all come back on 9.1R18 (build 29999)" in failed.error
    assert run.fake.nodes["bm-1"].build == TARGET
    assert undocumented(run.fake.calls) == []


@pytest.mark.parametrize("status", [405, 501])
async def test_assumed_writes_refused_go_operator_assisted(contract: Start, status: int) -> None:
    run = await contract(
        "active-passive", ["as-a", "as-b"], vip=True, active=1, knobs=Knobs(assumed_status=status)
    )
    fake = run.fake
    job = await run.create()
    await run.approve_at(job.id, Step.GATE_DISABLE)
    gate = await run.gate_at(job.id, Step.DISABLE_LOGINS, GateKind.CONFIRM)
    fake.login_permission = False  # the operator clicks Disable All Users
    await run.service.confirm(job.id, gate, "UCTAPP02")
    gate = await run.gate_at(job.id, Step.INSTALL, GateKind.CONFIRM)
    manual = [e.data for e in await run.service.store.events(job.id) if e.kind is EventKind.MANUAL]
    text = manual[-1]["instructions"]
    assert "as-b" in text and "pps-9.1R18.pkg" in text
    sha = next(s for s, b in fake.packages.items() if b == TARGET)
    assert sha in text
    fake.console_install("as-b", sha)  # the operator clicks Install Now
    await run.service.confirm(job.id, gate, "UCTAPP02")
    await run.approve_at(job.id, Step.GATE_ENABLE)
    gate = await run.gate_at(job.id, Step.ENABLE_LOGINS, GateKind.CONFIRM)
    fake.login_permission = True
    await run.service.confirm(job.id, gate, "UCTAPP02")
    done = await run.until(job.id, lambda j: j.terminal)
    _ok(run, done, allow=frozenset({status}))
    calls = fake.calls
    assert installs(calls) == [("as-b", status)]
    assert [(p, s) for p, _, s in permission_writes(calls)] == [(VIP, status), (VIP, status)]


async def test_same_release_newer_build_is_an_upgrade(contract: Start) -> None:
    """§4.6: `9.1R18 (build 29865)` does not match a running `9.1R18 (build 29000)`."""
    running = "9.1R18 (build 29000)"
    versions = (running, "9.1R18 (build 29865)")
    run = await contract("standalone", ["sr-1"], versions=versions, running=running)
    done = await run.happy()  # the newest catalogue entry: the higher build
    _ok(run, done)
    assert done.target == "9.1R18 (build 29865)"
    assert installs(run.fake.calls) == [("sr-1", 202)]


async def test_reboot_resets_connections_instead_of_refusing(contract: Start) -> None:
    """§4.11: a reset connection counts as unreachable, like a refused one."""
    run = await contract("active-active", ["rs-1", "rs-2"], knobs=Knobs(down="reset"))
    done = await run.happy()
    _ok(run, done)
    assert installs(run.fake.calls) == [("rs-1", 202)]
    watch = done.outputs.watch["nodes"]
    assert all(w["seen_down"] for w in watch.values()), watch


async def test_reboot_hangs_connections_until_timeout(contract: Start) -> None:
    """§4.11: a timeout counts as unreachable (client read timeout shortened to 0.3 s)."""
    knobs = Knobs(down="hang", reboot_s=1.0)
    run = await contract("standalone", ["hg-1"], knobs=knobs, read_timeout=0.3)
    done = await run.happy()
    _ok(run, done)
    assert done.outputs.watch["nodes"]["hg-1"]["seen_down"]


async def test_one_admin_session_per_node(contract: Start) -> None:
    """A login ends the node's earlier session: the node's and the VIP's keys evict each
    other; each 401 costs one login and one resend, never a write sent twice."""
    knobs = Knobs(one_session=True)
    run = await contract("active-passive", ["os-a", "os-b"], vip=True, knobs=knobs)
    done = await run.happy()
    _ok(run, done)
    assert installs(run.fake.calls) == [("os-a", 202)]
    assert permission_writes(run.fake.calls) == [(VIP, OFF, 200), (VIP, ON, 200)]
    assert any(c.status == 401 for c in run.fake.calls)
