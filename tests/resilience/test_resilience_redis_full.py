"""Redis answers but refuses writes while the job waits: it is full (`maxmemory` reached under
`noeviction`, as docker-compose runs it: `OOM command not allowed`), or it was demoted to a
replica by a failover (`READONLY`). Every write of the worker,
its scheduler ticks included (READONLY), is refused. The worker must back off, log
each failure once when it starts and once when it ends (never a traceback per tick), keep
its scheduler alive, and finish the job once memory is freed. The fault starts in the settle
wait, so the timer release tick fails too (its timer falls due meanwhile).

Prints `redis-full ...` with the log-line counts and the work done during the fault.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import pytest

from jobs.rules.model import State, Step
from tests.resilience.resilience_support import Rig

StartRig = Callable[..., Awaitable[Rig]]
FULL_FOR = 1.5


FAULTS = {  # CONFIG SET / REPLICAOF arguments: (set the fault, clear it)
    "full": (("maxmemory", "1"), ("maxmemory", "0")),
    "readonly": (("127.0.0.1", "1"), ("NO", "ONE")),  # a master that never answers
}


@pytest.mark.slow
@pytest.mark.parametrize("fault", list(FAULTS))
async def test_resilience_redis_refusing_writes_is_logged_once_and_waited_out(
    rig: StartRig, caplog: pytest.LogCaptureFixture, fault: str
) -> None:
    caplog.set_level(logging.ERROR, logger="apscheduler")
    r = await rig(workers=1)
    w = r.workers[0]
    reads = 0
    read = w.queue.read

    async def counting_read(block_ms: int | None, count: int = 1) -> list[object]:
        nonlocal reads
        reads += 1
        return list(await read(block_ms, count))

    w.queue.read = counting_read  # type: ignore[assignment,method-assign]
    job = await r.create("east")
    # In the settle wait: its durable timer falls due while Redis is full.
    await r.until(job.id, lambda j: j.step is Step.SETTLE and j.state is State.WAITING)
    on, off = FAULTS[fault]
    await _apply(r, fault, on)
    reads_before, t0 = reads, time.monotonic()
    await asyncio.sleep(FULL_FOR)
    reads_during = reads - reads_before
    await _apply(r, fault, off)
    full_for = time.monotonic() - t0
    done = await r.until(job.id, lambda j: j.terminal, within=30)

    def recovered() -> bool:  # a failing tick says so at its next run, which may come later
        failing = {kw.get("tick") for _, e, kw in r.log.lines if e == "scheduler tick failing"}
        back = {kw.get("tick") for _, e, kw in r.log.lines if e == "scheduler tick works again"}
        return failing <= back

    deadline = time.monotonic() + 10
    while not recovered() and time.monotonic() < deadline:  # noqa: ASYNC110 - a log, no event
        await asyncio.sleep(0.05)
    events = [e for _, e, _ in r.log.lines]
    ticks_failing = [kw.get("tick") for _, e, kw in r.log.lines if e == "scheduler tick failing"]
    scheduler_errors = [rec.getMessage() for rec in caplog.records if rec.name.startswith(
        "apscheduler")]
    effects = r.effects("east")
    errors = sorted({kw["exc"][:60] for _, _, kw in r.log.lines if kw.get("exc")})
    line = (
        f"redis-refuses fault={fault:<8} for={full_for:.1f}s final={done.state.value} "
        f"reads_during={reads_during} "
        f"crash_logs={events.count('work item crashed')} "
        f"recovered_logs={events.count('work items run again')} ticks_failing={ticks_failing} "
        f"tick_recovered_logs={events.count('scheduler tick works again')} "
        f"apscheduler_errors={len(scheduler_errors)} disable={effects[0]} install={effects[1]} "
        f"enable={effects[2]} errors={errors}"
    )
    print(line)
    loop_lines = [(e, kw.get("exc")) for _, e, kw in r.log.lines if "work item" in e]
    assert done.state is State.SUCCEEDED, done.error
    assert effects == (1, 1, 1), line
    assert scheduler_errors == [], scheduler_errors[:3]
    assert events.count("work item crashed") <= 1, loop_lines
    assert events.count("work items run again") == events.count("work item crashed"), loop_lines
    assert len(ticks_failing) == len(set(ticks_failing)), f"a tick failure logged twice: {line}"
    assert events.count("scheduler tick works again") == len(ticks_failing), line
    assert reads_during <= 12, f"the loop spins instead of backing off: {line}"
    assert r.workers_running()


async def _apply(r: Rig, fault: str, args: tuple[str, str]) -> None:
    if fault == "full":
        await r.redis.config_set(*args)
    else:
        await r.redis.replicaof(*args)
