"""Drive a job through `JobService` in real time: a worker in the background, waits for a
condition, the open gate at a step approved or confirmed as a non-requester."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AsyncExitStack

import pytest

from jobs.rules.model import GateKind, Job, Step
from jobs.service import JobService
from jobs.worker.process import Worker


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
