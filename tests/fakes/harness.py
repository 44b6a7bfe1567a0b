"""Test support for the steps: a real inventory on disk, a FakeCluster, a tiny runner.

`Harness.apply` applies a step result the way the runner does (outputs merged, the step
advanced, polls moving the fake clock, gates opened), without Redis. Shipped with the
package (like `tests.fakes.appliance`) so that tests anywhere can drive steps without sockets.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobs.config.inventory import Cluster, Inventory, parse_inventory
from jobs.config.settings import Settings
from jobs.procedures import procedure_for
from jobs.rules.model import Decision, GateKind, Job, State, Step, StepStatus
from jobs.rules.outputs import StepOut
from jobs.steps.base import (
    Advance,
    AskApproval,
    AskOperator,
    Fail,
    Poll,
    StepContext,
    StepResult,
)
from tests.fakes.appliance import FakeCluster
from tests.fakes.clock import FakeClock

RUNNING = "9.1R17 (build 27583)"
TARGET = "9.1R18"
TARGET_BUILD = "9.1R18 (build 29865)"
ENV = {"PPS_U": "admin", "PPS_P": "not-a-real-password"}
NODES = {
    "standalone": ["solo"],
    "active-passive": ["east-a", "east-b"],
    "active-active": ["aa-1", "aa-2", "aa-3"],
}


def write_inventory(
    tmp: Path,
    mode: str,
    *,
    vip: bool = False,
    manual: list[str] | None = None,
    window: str | None = None,
    versions: tuple[str, ...] = ("9.1R17", "9.1R18", "9.1R16"),
    catalogue_sha: dict[str, str] | None = None,
) -> Inventory:
    """Firmware files on disk and a validated inventory with one cluster `c1`."""
    fw_dir = tmp / "firmware"
    fw_dir.mkdir(exist_ok=True)
    firmware = []
    for v in versions:
        f = fw_dir / f"pps-{v}-package.pkg"
        f.write_bytes(f"package {v}\n".encode() * 100)
        sha = (catalogue_sha or {}).get(v) or hashlib.sha256(f.read_bytes()).hexdigest()
        firmware.append({"version": v, "file": f"firmware/{f.name}", "sha256": sha})
    cluster: dict[str, Any] = {
        "mode": mode,
        "nodes": [{"name": n, "url": f"https://{n}.example.net"} for n in NODES[mode]],
        "username_env": "PPS_U",
        "password_env": "PPS_P",
    }
    if vip:
        cluster["vip"] = "https://vpn.example.net"
    if manual:
        cluster["manual"] = manual
    if window:
        cluster["window"] = window
    data = {"clusters": {"c1": cluster}, "firmware": firmware}
    return parse_inventory(data, tmp, env=ENV, check_files=False)


@dataclass
class Harness:
    """One job on one fake cluster, with a runner-like `apply`."""

    job: Job
    cluster: Cluster
    inventory: Inventory
    fake: FakeCluster
    settings: Settings
    clock: FakeClock
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    progress: list[str] = field(default_factory=list)
    results: list[tuple[Step, StepResult]] = field(default_factory=list)
    on_checkpoint: Callable[[dict[str, Any]], None] | None = None

    def ctx(self) -> StepContext:
        async def checkpoint(outputs: StepOut) -> None:
            fields = outputs.model_dump(exclude_unset=True)
            if self.on_checkpoint:
                self.on_checkpoint(fields)
            self.checkpoints.append(fields)
            self.job.outputs.merge(outputs)

        async def progress(text: str) -> None:
            self.progress.append(text)

        return StepContext(
            job=self.job,
            cluster=self.cluster,
            inventory=self.inventory,
            appliance=self.fake,
            settings=self.settings,
            clock=self.clock,
            checkpoint=checkpoint,
            progress=progress,
            procedure=procedure_for(self.job),
        )

    async def run(self, step: Step | None = None) -> StepResult:
        """Run one step (default: the job's current step) without applying it."""
        s = step or self.job.step
        self.job.step = s
        result = await procedure_for(self.job).spec(s).run(self.ctx())
        self.results.append((s, result))
        return result

    def apply(self, result: StepResult) -> None:
        """What the runner does with a result (minus Redis)."""
        job, now, step = self.job, self.clock.now(), self.job.step
        rec = job.step_record(step)
        rec.started_at = rec.started_at or now
        if isinstance(result, Advance):
            if result.outputs is not None:
                job.outputs.merge(result.outputs)
            rec.status, rec.finished_at, rec.detail = StepStatus.DONE, now, result.detail
            job.set_step_record(step, rec)
            if job.outputs.acting_node:
                job.acting_node = job.outputs.acting_node
            if job.outputs.target_build:
                job.target = job.outputs.target_build
            if step == Step.DISABLE_LOGINS:
                job.logins_disabled, job.logins_disabled_at = True, now
            if step == Step.ENABLE_LOGINS:
                job.logins_disabled, job.logins_enabled_at = False, now
            nxt = procedure_for(job).next(step)
            if nxt is None:
                job.state = State.SUCCEEDED
            else:
                job.step = nxt
        elif isinstance(result, Poll):
            if result.outputs is not None:
                job.outputs.merge(result.outputs)
            if result.progress:
                self.progress.append(result.progress)
            job.set_step_record(step, rec)
            self.clock.advance(result.after)
        elif isinstance(result, AskApproval):
            if result.outputs is not None:
                job.outputs.merge(result.outputs)
            job.add_gate(GateKind.APPROVAL, step, now)
        elif isinstance(result, AskOperator):
            if result.outputs is not None:
                job.outputs.merge(result.outputs)
            job.manual.setdefault(step.value, result.reason)
            job.add_gate(GateKind.CONFIRM, step, now)
        elif isinstance(result, Fail):
            if result.outputs is not None:
                job.outputs.merge(result.outputs)
            job.error = result.error
            rec.status = StepStatus.FAILED
            job.set_step_record(step, rec)
            job.state = State.FAILED

    def decide_open(self, decision: Decision, user: str = "UAPPROVER") -> None:
        gate = self.job.open_gate()
        assert gate is not None, "no open gate"
        self.clock.advance(5)
        self.job.decide_gate(gate.id, decision, user, self.clock.now())

    async def drive(
        self,
        operator: Callable[[Harness, AskOperator], None] | None = None,
        max_runs: int = 2000,
    ) -> StepResult:
        """Run to the end, approving every gate; `operator` acts on each AskOperator."""
        for _ in range(max_runs):
            result = await self.run()
            self.apply(result)
            if isinstance(result, Fail) or self.job.state == State.SUCCEEDED:
                return result
            if isinstance(result, AskApproval):
                self.decide_open(Decision.APPROVED)
            elif isinstance(result, AskOperator):
                if operator is None:
                    raise AssertionError(f"unexpected AskOperator: {result}")
                operator(self, result)
                self.decide_open(Decision.CONFIRMED, "UOPERATOR")
        raise AssertionError("procedure did not finish")


def make_settings(tmp: Path, **kw: Any) -> Settings:
    """Settings for tests: backups under `tmp`, production timings unless overridden."""
    base: dict[str, Any] = {
        "PPS_BACKUP_DIR": str(tmp / "backups"),
        "PPS_POLL_SECONDS": 10.0,
        "PPS_SETTLE_SECONDS": 300.0,
        "PPS_REBOOT_TIMEOUT_SECONDS": 1800.0,
    }
    base.update(kw)
    return Settings(_env_file=None, **base)


def new_harness(
    tmp_path: Path,
    mode: str = "standalone",
    *,
    vip: bool = False,
    manual: list[str] | None = None,
    window: str | None = None,
    versions: tuple[str, ...] = ("9.1R17", "9.1R18", "9.1R16"),
    catalogue_sha: dict[str, str] | None = None,
    fake_kw: dict[str, Any] | None = None,
    settings_kw: dict[str, Any] | None = None,
    job_kw: dict[str, Any] | None = None,
) -> Harness:
    """A job on a FakeCluster shaped like cluster `c1` of a fresh inventory in `tmp_path`."""
    inv = write_inventory(
        tmp_path,
        mode,
        vip=vip,
        manual=manual,
        window=window,
        versions=versions,
        catalogue_sha=catalogue_sha,
    )
    cluster = inv.clusters["c1"]
    clock = FakeClock()
    fkw: dict[str, Any] = {
        "build": RUNNING,
        "packages": {"pps-9.1R18-package.pkg": TARGET_BUILD},
        "sessions": 412,
    }
    fkw.update(fake_kw or {})
    fake = FakeCluster.for_cluster(cluster, clock, **fkw)
    jkw: dict[str, Any] = {"id": "J-0001", "cluster": "c1", "target": TARGET}
    jkw.update(job_kw or {})
    job = Job(requester="UREQ", **jkw)
    job.created_at = clock.now()
    return Harness(
        job, cluster, inv, fake, make_settings(tmp_path, **(settings_kw or {})), clock
    )
