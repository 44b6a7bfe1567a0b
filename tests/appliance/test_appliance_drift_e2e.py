"""Configuration drift end to end: JobService + a Worker + the PPS client + the simulator
(real HTTP) + Redis, then `ppsbot diff` as a real command. No drift, a drift made by the
upgrade, a tree that cannot be read, a tree over the size bound, a dry run."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from jobs.rules.events import EventKind
from jobs.rules.model import Job, State, Step
from jobs.service import UpgradeRequest
from jobs.steps.drift import AFTER, BEFORE, DIFF
from jobs.store.keys import Keys
from tests.appliance.appliance_e2e import Run, start_run
from tests.fakes import PPSBOT, child_env

PROTOCOLS = "/system/settings/security/ssl-options/allowed-protocols"
LEGACY = "/users/sign-in-policies/user-url/*~1legacy~1"


class DriftRun(Run):
    """The appliance end-to-end set-up, plus a whole upgrade in one call."""

    async def upgrade(self, cluster: str, dry_run: bool = False) -> Job:
        job, created = await self.service.create_job(
            UpgradeRequest(cluster=cluster, requester="UREQ0001", channel="C0", dry_run=dry_run)
        )
        assert created
        if not dry_run:
            await self.approve_at(job.id, Step.GATE_DISABLE)
            await self.approve_at(job.id, Step.GATE_ENABLE)
        done = await self.until(job.id, lambda j: j.terminal)
        assert done.state is State.SUCCEEDED, done.error  # a drift never fails a job
        return done

    def folder(self, job: Job) -> Path:
        return Path(self.settings.PPS_BACKUP_DIR) / job.cluster / job.id


@pytest.fixture
async def e2e(
    redis: aioredis.Redis, prefix: str, keys: Keys, tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable[DriftRun]]]:
    """`await e2e({cluster: {...}}, **settings)` → a simulator, a worker and the service."""
    async with AsyncExitStack() as stack:

        async def start(clusters: dict[str, Any], **kw: Any) -> DriftRun:
            run = await start_run(stack, redis, prefix, keys, tmp_path, clusters,
                                  make=DriftRun, **kw)
            assert isinstance(run, DriftRun)
            return run

        yield start


async def ppsbot_diff(run: Run, *args: str) -> tuple[int, str, str]:
    """Run `ppsbot diff …` as a process configured by the environment, like an operator."""
    env = {**os.environ, "REDIS_URL": os.environ.get("REDIS_URL", "redis://localhost:6379/0"),
           "PPS_REDIS_PREFIX": run.settings.PPS_REDIS_PREFIX,
           "PPS_BACKUP_DIR": run.settings.PPS_BACKUP_DIR}
    proc = await asyncio.create_subprocess_exec(
        str(PPSBOT), "diff", *args, env=child_env(env),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    return proc.returncode or 0, out.decode(), err.decode()


StartDrift = Callable[..., Awaitable[DriftRun]]


async def test_no_drift_says_configuration_unchanged(e2e: StartDrift) -> None:
    run = await e2e({"lab": {"mode": "standalone", "nodes": ["lab-1"]}})
    done = await run.upgrade("lab")
    drift = done.outputs.drift
    assert drift is not None and drift.status == "unchanged" and drift.compared > 50
    folder = run.folder(done)
    for name in (BEFORE, AFTER, DIFF):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
    manifest = json.loads((folder / "manifest.json").read_text())
    assert {e["file"] for e in manifest["config"]} == {BEFORE, AFTER, DIFF}
    assert {e["file"] for e in manifest["files"]} == {"system.cfg", "user.cfg"}
    finished = [e.data for e in await run.service.store.events(done.id)
                if e.kind is EventKind.FINISHED]
    assert finished[0]["summary"]["drift"]["status"] == "unchanged"
    assert [e.call for e in run.sim.cluster("lab").log].count("export") == 2  # reads only
    code, out, _ = await ppsbot_diff(run, done.id)
    assert code == 0 and f"Configuration drift of job {done.id} on lab: unchanged" in out


async def test_an_upgrade_that_changes_the_configuration_is_reported(
    e2e: Callable[..., Awaitable[DriftRun]],
) -> None:
    run = await e2e({"east": {"mode": "active-passive", "nodes": ["east-a", "east-b"],
                              "knobs": {"upgrade_changes_config": True}}})
    done = await run.upgrade("east")
    drift = done.outputs.drift
    assert drift is not None and drift.status == "changed"
    assert [(c.op, c.path) for c in drift.first] == [("~", PROTOCOLS), ("-", LEGACY)]
    assert done.outputs.config_after is not None and done.outputs.config_after.node == "east-a"
    full = json.loads((run.folder(done) / DIFF).read_text())
    assert full["changed"] == [
        {"path": PROTOCOLS, "before": "TLSv1.1,TLSv1.2", "after": "TLSv1.2,TLSv1.3"}]
    assert full["removed"][0]["value"]["name"] == "*/legacy/"
    assert run.sim.cluster("east").config_migrated

    code, out, err = await ppsbot_diff(run, done.id)  # the folder, found through Redis
    assert code == 0, err
    lines = out.splitlines()
    head = f"Configuration drift of job {done.id} on east: changed (1 changed, 1 removed)"
    assert lines[0] == head
    assert f'~ {PROTOCOLS}: "TLSv1.1,TLSv1.2" -> "TLSv1.2,TLSv1.3"' in lines
    assert any(line.startswith(f"- {LEGACY}: ") for line in lines)
    code, out, _ = await ppsbot_diff(
        run, done.id, "--backup-dir", run.settings.PPS_BACKUP_DIR, "--cluster", "east", "--json")
    assert code == 0 and json.loads(out) == full
    code, out, err = await ppsbot_diff(run, "J-NOSUCHJOB")
    assert code == 1 and out == "" and "no configuration diff stored for job J-NOSUCHJOB" in err


async def test_an_unreadable_tree_is_reported_never_a_failure(
    e2e: Callable[..., Awaitable[DriftRun]],
) -> None:
    run = await e2e({"lab": {"mode": "standalone", "nodes": ["lab-1"],
                             "faults": {"config_unreadable": True}}})
    done = await run.upgrade("lab")
    before, drift = done.outputs.config_before, done.outputs.drift
    assert before is not None and not before.readable and "HTTP 500" in (before.reason or "")
    assert drift is not None and drift.status == "unreadable"
    assert (drift.reason or "").startswith("before the upgrade: HTTP 500")
    assert not (run.folder(done) / BEFORE).exists()
    code, out, _ = await ppsbot_diff(run, done.id)
    assert code == 0 and "unreadable — not compared (before the upgrade: HTTP 500" in out


async def test_a_huge_tree_is_read_up_to_the_size_bound(
    e2e: Callable[..., Awaitable[DriftRun]],
) -> None:
    run = await e2e({"lab": {"mode": "standalone", "nodes": ["lab-1"],
                             "faults": {"config_huge_objects": 400}}},
                    PPS_CONFIG_MAX_MB=0.05)
    done = await run.upgrade("lab")
    cap = int(0.05 * 1024 * 1024)
    for snap in (done.outputs.config_before, done.outputs.config_after):
        assert snap is not None and snap.readable and snap.size <= cap
        assert snap.reason == f"size cap of {cap} bytes reached" and snap.not_read > 300
    stored = json.loads((run.folder(done) / BEFORE).read_text())
    before = done.outputs.config_before
    assert stored["complete"] is False and before is not None
    assert len(stored["not_read"]) == before.not_read
    drift = done.outputs.drift
    assert drift is not None and drift.status == "unchanged" and drift.not_compared > 300


async def test_dry_run_reports_whether_the_tree_is_readable(
    e2e: Callable[..., Awaitable[DriftRun]],
) -> None:
    run = await e2e({"lab": {"mode": "standalone", "nodes": ["lab-1"]},
                     "bad": {"mode": "standalone", "nodes": ["bad-1"],
                             "faults": {"config_unreadable": True}}})
    good = await run.upgrade("lab", dry_run=True)
    bad = await run.upgrade("bad", dry_run=True)
    [row] = [r for r in good.outputs.preflight or [] if r["check"] == "configuration tree"]
    assert row["ok"] and not row["warn"] and "readable from lab-1: 21 object(s)" in row["detail"]
    [row] = [r for r in bad.outputs.preflight or [] if r["check"] == "configuration tree"]
    assert row["ok"] and row["warn"] and "not readable from bad-1 (HTTP 500" in row["detail"]
    backups = Path(run.settings.PPS_BACKUP_DIR)
    assert not await asyncio.to_thread(backups.exists)  # a dry run stores nothing
