"""Drive a job through `JobService` from a test: wait for a condition, find the open gate
at a step, approve or confirm it as a non-requester. Shared by the end-to-end suites."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from jobs.config.settings import Settings
from jobs.rules.model import GateKind, Job, Step
from jobs.service import JobService
from jobs.worker.process import Worker


def fast_settings(prefix: str, tmp_path: Path, **kw: Any) -> Settings:
    """Settings for a whole upgrade against the simulator in seconds: 0.1 s polls, 0.3 s
    settle, 0.6 s lease (the worker stops within a block of 0.3 s), two-person rule on;
    `kw` overrides."""
    values: dict[str, Any] = {
        "PPS_REDIS_PREFIX": prefix,
        "PPS_BACKUP_DIR": str(tmp_path / "backups"),
        "PPS_POLL_SECONDS": 0.1,
        "PPS_SETTLE_SECONDS": 0.3,
        "PPS_REBOOT_TIMEOUT_SECONDS": 15.0,
        "PPS_REMINDER_SECONDS": 60.0,
        "PPS_LEASE_SECONDS": 0.6,
        "PPS_TWO_PERSON_RULE": True,
        **kw,
    }
    return Settings(_env_file=None, **values)


def run_worker(stack: AsyncExitStack, worker: Worker) -> None:
    """Run `worker` in the background until `stack` closes, then stop it (10 s at most)."""
    task = asyncio.create_task(worker.run())

    async def stop_worker() -> None:
        worker.stop()
        await asyncio.wait_for(task, 10)

    stack.push_async_callback(stop_worker)


class JobDriver:
    """Mixin: needs `service` (a JobService) and `approver` (a user id, not the requester)."""

    service: JobService
    approver: str

    async def until(self, job_id: str, pred: Callable[[Job], bool], within: float = 20) -> Job:
        """Poll the job until `pred` holds; fail with where it is stuck."""
        deadline = time.monotonic() + within
        while True:
            job = await self.service.get(job_id)
            if pred(job):
                return job
            if time.monotonic() > deadline:
                pytest.fail(f"job {job_id} stuck: {job.state} at {job.step}: {job.error}")
            await asyncio.sleep(0.05)

    async def gate_at(self, job_id: str, step: Step, kind: GateKind = GateKind.APPROVAL) -> str:
        """The id of the open gate of `kind` at `step` (waits for it)."""

        def here(j: Job) -> bool:
            g = j.open_gate()
            return g is not None and g.step is step and g.kind is kind

        job = await self.until(job_id, lambda j: here(j) or j.settled)
        gate = job.open_gate()
        assert gate is not None and here(job), f"no {kind} gate at {step}: {job.state} {job.error}"
        return gate.id

    async def approve_at(self, job_id: str, step: Step) -> None:
        await self.service.approve(job_id, await self.gate_at(job_id, step), self.approver)

    async def confirm_at(self, job_id: str, step: Step) -> None:
        gate = await self.gate_at(job_id, step, GateKind.CONFIRM)
        await self.service.confirm(job_id, gate, self.approver)
