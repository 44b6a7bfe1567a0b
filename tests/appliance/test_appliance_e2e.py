"""End to end: JobService + an in-process Worker + the PPS client + the simulator + Redis.

Real time, shrunk: simulator timings of 0.1-0.3 s, PPS_POLL_SECONDS 0.1, PPS_SETTLE_SECONDS
0.3. Gates are decided through `JobService` by an approver who is not the requester. Each
run asserts the write calls every node received, from the simulator's own log.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from job_driver import JobDriver, fast_settings, run_worker

from jobs.appliance.client import make_appliance
from jobs.appliance.protocol import Appliance
from jobs.config.clock import SystemClock
from jobs.config.inventory import Cluster, Inventory, parse_inventory
from jobs.config.settings import Settings
from jobs.rules.events import EventKind
from jobs.rules.model import GateKind, Job, State, Step
from jobs.service import JobService, UpgradeRequest
from jobs.store.keys import Keys
from jobs.store.wiring import redis_service
from jobs.worker.process import Worker
from sim.pps.packages import write_package
from sim.pps.simulator import Simulator

REQUESTER, APPROVER = "UREQ0001", "UAPP0002"
RUNNING, TARGET = "9.1R17 (build 27583)", "9.1R18 (build 29865)"
FAST = {"install_seconds": 0.1, "reboot_seconds": 0.3, "rejoin_seconds": 0.1}


@dataclass
class Run(JobDriver):
    """One end-to-end set-up: simulator, inventory, service, a running worker."""

    approver = APPROVER

    sim: Simulator
    inventory: Inventory
    settings: Settings
    service: JobService

    async def create(self, cluster: str) -> Job:
        job, created = await self.service.create_job(
            UpgradeRequest(cluster=cluster, requester=REQUESTER, channel="C0E2E")
        )
        assert created
        return job

    async def events(self, job_id: str, kind: EventKind) -> list[dict[str, Any]]:
        return [e.data for e in await self.service.store.events(job_id) if e.kind is kind]

    def writes(self, cluster: str) -> dict[str, list[str]]:
        """Per node: every API write received, as `call=detail:status`."""
        c = self.sim.cluster(cluster)
        out: dict[str, list[str]] = {n.name: [] for n in c.nodes}
        for e in c.log:
            out[e.node].append(f"{e.call}={e.detail}:{e.status}")
        return out


Start = Callable[..., Awaitable[Run]]


@pytest.fixture
async def e2e(
    redis: aioredis.Redis, prefix: str, keys: Keys, tmp_path: Path
) -> AsyncIterator[Start]:
    """`await e2e({"c": {...sim cluster...}}, manual=..., **settings)` → a running `Run`."""
    async with AsyncExitStack() as stack:

        async def start(
            clusters: dict[str, Any], inventory_edit: dict[str, Any] | None = None, **kw: Any
        ) -> Run:
            sim = Simulator(_sim_config(clusters))
            await sim.start()
            stack.push_async_callback(sim.stop)
            fw = []
            for version, build in (("9.1R17", 27583), ("9.1R18", 29865)):
                sha = write_package(tmp_path / "fw" / f"pps-{version}.pkg", version, build)
                fw.append({"version": version, "file": f"fw/pps-{version}.pkg", "sha256": sha})
            data = sim.inventory(fw)
            for name, extra in (inventory_edit or {}).items():
                data["clusters"][name].update(extra)
            env = sim.credentials_env()
            inventory = parse_inventory(data, tmp_path, env=env)
            settings = fast_settings(prefix, tmp_path, **kw)

            def appliance(cluster: Cluster) -> Appliance:
                return make_appliance(cluster, env=env, settings=settings)

            worker = Worker(
                redis, settings, inventory, appliance_factory=appliance, name="e2e", keys=keys
            )
            run_worker(stack, worker)
            service = redis_service(redis, settings, inventory, SystemClock(), keys)
            return Run(sim, inventory, settings, service)

        yield start


def _sim_config(clusters: dict[str, Any]) -> Any:
    from sim.pps.config import parse_config

    merged = {
        name: {"sessions": 412, **c, "knobs": {**FAST, **c.get("knobs", {})}}
        for name, c in clusters.items()
    }
    return parse_config({"clusters": merged}, Path("."))


def _builds(run: Run, cluster: str) -> list[str]:
    return [n.build for n in run.sim.cluster(cluster).nodes]


async def _happy(run: Run, cluster: str) -> Job:
    job = await run.create(cluster)
    await run.approve_at(job.id, Step.GATE_DISABLE)
    await run.approve_at(job.id, Step.GATE_ENABLE)
    return await run.until(job.id, lambda j: j.terminal)


# -- the three topologies -----------------------------------------------------------------


async def test_standalone_upgrade(e2e: Start) -> None:
    run = await e2e({"lab": {"mode": "standalone", "nodes": ["lab-1"]}})
    done = await _happy(run, "lab")
    assert done.state is State.SUCCEEDED and done.settled, done.error
    assert _builds(run, "lab") == [TARGET]
    assert run.sim.cluster("lab").login_permission is True
    assert run.writes("lab") == {
        "lab-1": [
            "export=system_config:200",
            "export=user_config:200",
            "login_permission=false:200",
            f"install={TARGET}:202",
            "login_permission=true:200",
        ]
    }
    summary = (await run.events(done.id, EventKind.FINISHED))[0]["summary"]
    assert summary["builds_after"] == {"lab-1": TARGET}


async def test_active_passive_upgrade_vip_flips_and_returns(e2e: Start) -> None:
    run = await e2e({"east": {"mode": "active-passive", "nodes": ["east-a", "east-b"]}})
    done = await _happy(run, "east")
    assert done.state is State.SUCCEEDED and done.settled, done.error
    assert _builds(run, "east") == [TARGET, TARGET]
    writes = run.writes("east")
    # Install went to the active node; logins were switched through the VIP (east-a then).
    assert writes == {
        "east-a": [
            "export=system_config:200",
            "export=user_config:200",
            "login_permission=false:200",
            f"install={TARGET}:202",
            "login_permission=true:200",
        ],
        "east-b": [],
    }
    vip_moves = [t for _, t in run.sim.cluster("east").events if t.startswith("vip:")]
    assert vip_moves == ["vip: east-a -> east-b", "vip: east-b -> east-a"]
    progress = [p["text"] for p in await run.events(done.id, EventKind.PROGRESS)]
    assert any("VIP" in t and "east-b" in t for t in progress), progress
    assert done.outputs.install_node == "east-a"


async def test_active_active_three_nodes(e2e: Start) -> None:
    run = await e2e({"mesh": {"mode": "active-active", "nodes": ["m-1", "m-2", "m-3"]}})
    done = await _happy(run, "mesh")
    assert done.state is State.SUCCEEDED and done.settled, done.error
    assert _builds(run, "mesh") == [TARGET] * 3
    writes = run.writes("mesh")
    assert writes["m-1"] == [
        "export=system_config:200",
        "export=user_config:200",
        "login_permission=false:200",
        f"install={TARGET}:202",
        "login_permission=true:200",
    ]
    assert writes["m-2"] == writes["m-3"] == []
    reboots = [t for _, t in run.sim.cluster("mesh").events if t.endswith("rebooting")]
    assert reboots == ["m-1: rebooting", "m-2: rebooting", "m-3: rebooting"]


# -- faults -------------------------------------------------------------------------------


async def test_node_never_returns_fails_at_deadline_and_enable_still_works(e2e: Start) -> None:
    run = await e2e(
        {
            "east": {
                "mode": "active-passive",
                "nodes": ["east-a", "east-b"],
                "faults": {"never_returns": ["east-a"]},
            }
        },
        PPS_REBOOT_TIMEOUT_SECONDS=1.5,
    )
    job = await run.create("east")
    await run.approve_at(job.id, Step.GATE_DISABLE)
    failed = await run.until(job.id, lambda j: j.state is State.FAILED)
    assert failed.logins_disabled and "east-a" in failed.error, failed.error
    assert "did not all come back" in failed.error
    assert run.sim.cluster("east").login_permission is False  # still disabled, and flagged
    alerts = await run.events(job.id, EventKind.LOGINS_DISABLED_ALERT)
    assert alerts and "still disabled" in alerts[0]["text"]
    await run.approve_at(job.id, Step.GATE_ENABLE)  # the enable gate is offered and works
    done = await run.until(job.id, lambda j: j.settled)
    assert done.state is State.FAILED and not done.logins_disabled
    assert run.sim.cluster("east").login_permission is True
    assert run.writes("east") == {
        "east-a": [
            "export=system_config:200",
            "export=user_config:200",
            "login_permission=false:200",
            f"install={TARGET}:202",
        ],
        "east-b": ["login_permission=true:200"],  # through the VIP, now on the passive
    }


async def test_install_refused_fails_with_enable_gate(e2e: Start) -> None:
    run = await e2e(
        {"lab": {"mode": "standalone", "nodes": ["lab-1"], "faults": {"install_status": 500}}}
    )
    job = await run.create("lab")
    await run.approve_at(job.id, Step.GATE_DISABLE)
    failed = await run.until(job.id, lambda j: j.state is State.FAILED)
    assert "refused the install" in failed.error and "500" in failed.error
    assert failed.logins_disabled
    await run.approve_at(job.id, Step.GATE_ENABLE)
    done = await run.until(job.id, lambda j: j.settled)
    assert done.state is State.FAILED
    assert _builds(run, "lab") == [RUNNING]
    assert run.writes("lab") == {
        "lab-1": [
            "export=system_config:200",
            "export=user_config:200",
            "login_permission=false:200",
            f"install={TARGET}:500",
            "login_permission=true:200",
        ]
    }


async def test_assumed_writes_404_go_operator_assisted(e2e: Start) -> None:
    run = await e2e(
        {
            "east": {
                "mode": "active-passive",
                "nodes": ["east-a", "east-b"],
                "faults": {"assumed_404": True},
            }
        }
    )
    c = run.sim.cluster("east")
    job = await run.create("east")
    await run.approve_at(job.id, Step.GATE_DISABLE)
    # Disable: the PUT answers 404, so an operator does it on the console, then confirms.
    gate = await run.gate_at(job.id, Step.DISABLE_LOGINS, GateKind.CONFIRM)
    manual = await run.events(job.id, EventKind.MANUAL)
    assert "Disable All Users" in manual[-1]["instructions"]
    c.login_permission = False  # the operator's click in the admin console
    await run.service.confirm(job.id, gate, APPROVER)
    # Install: the upload answers 404; the operator installs from the console.
    gate = await run.gate_at(job.id, Step.INSTALL, GateKind.CONFIRM)
    manual = await run.events(job.id, EventKind.MANUAL)
    assert "pps-9.1R18.pkg" in manual[-1]["instructions"]
    assert "Upgrade/Downgrade" in manual[-1]["instructions"]
    await run.sim.console_install("east", "east-a", "9.1R18", 29865)
    await run.service.confirm(job.id, gate, APPROVER)
    await run.approve_at(job.id, Step.GATE_ENABLE)
    gate = await run.gate_at(job.id, Step.ENABLE_LOGINS, GateKind.CONFIRM)
    c.login_permission = True
    await run.service.confirm(job.id, gate, APPROVER)
    done = await run.until(job.id, lambda j: j.terminal)
    assert done.state is State.SUCCEEDED and done.settled, done.error
    assert _builds(run, "east") == [TARGET, TARGET]
    assert run.writes("east") == {
        "east-a": [
            "export=system_config:200",
            "export=user_config:200",
            "login_permission=false:404",
            "install=:404",  # refused before the upload was read
            "login_permission=true:404",
        ],
        "east-b": [],
    }


async def test_operator_confirm_without_doing_it_is_asked_again(e2e: Start) -> None:
    run = await e2e(
        {"lab": {"mode": "standalone", "nodes": ["lab-1"], "faults": {"assumed_404": True}}}
    )
    job = await run.create("lab")
    await run.approve_at(job.id, Step.GATE_DISABLE)
    first = await run.gate_at(job.id, Step.DISABLE_LOGINS, GateKind.CONFIRM)
    await run.service.confirm(job.id, first, APPROVER)  # clicked, but nothing was done
    second = await run.gate_at(job.id, Step.DISABLE_LOGINS, GateKind.CONFIRM)
    assert second != first
    manual = await run.events(job.id, EventKind.MANUAL)
    assert "still enabled" in manual[-1].get("saw", ""), manual[-1]
    # Abort at step 5: the enable gate is offered (the disable may have happened).
    await run.service.abort(job.id, REQUESTER)
    await run.approve_at(job.id, Step.GATE_ENABLE)
    done = await run.until(job.id, lambda j: j.settled)
    assert done.state is State.CANCELLED, done.error
    assert run.sim.cluster("lab").login_permission is True
    assert run.writes("lab") == {
        "lab-1": [
            "export=system_config:200",
            "export=user_config:200",
            "login_permission=false:404",  # then nothing: logins were found enabled
        ]
    }


async def test_api_key_expires_mid_run(e2e: Start) -> None:
    run = await e2e(
        {
            "east": {
                "mode": "active-passive",
                "nodes": ["east-a", "east-b"],
                "knobs": {"key_ttl_seconds": 0.4},
            }
        }
    )
    c = run.sim.cluster("east")
    job = await run.create("east")
    await run.gate_at(job.id, Step.GATE_DISABLE)
    c.expire_keys()  # and every key also dies 0.4 s after it was issued
    await run.service.approve(job.id, await run.gate_at(job.id, Step.GATE_DISABLE), APPROVER)
    await run.approve_at(job.id, Step.GATE_ENABLE)
    done = await run.until(job.id, lambda j: j.terminal)
    assert done.state is State.SUCCEEDED and done.settled, done.error
    assert _builds(run, "east") == [TARGET, TARGET]
    ok = {n: [w for w in ws if not w.endswith(":401")] for n, ws in run.writes("east").items()}
    assert ok == {
        "east-a": [
            "export=system_config:200",
            "export=user_config:200",
            "login_permission=false:200",
            f"install={TARGET}:202",
            "login_permission=true:200",
        ],
        "east-b": [],
    }
    assert sum(n.logins for n in c.nodes) > 4  # re-authenticated along the way
