"""The metrics that matter (issue 11, item 5), scraped from a worker's own `/metrics` while an
upgrade runs through the bot, the Slack stand-in and real Redis: outcome and duration of the
job, how long logins were off, how long each gate waited, clusters with logins off now, and
escalations; `/healthz` beside them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from jobs.appliance.protocol import Appliance
from jobs.config.clock import SystemClock
from jobs.config.inventory import Cluster
from jobs.rules.model import Step
from jobs.worker.metrics_server import serve_worker_metrics
from jobs.worker.process import Worker
from tests.fakes import FakeCluster, free_port
from tests.slack.slack_stack import FAST_FAKE, Stack, StackFactory

A1, A2 = "U_APPROVER1", "U_APPROVER2"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@asynccontextmanager
async def metrics_worker(st: Stack) -> AsyncIterator[str]:
    """A worker for the stack with its `/metrics` served on a free port; yields the URL."""
    settings = st.settings.model_copy(update={"PPS_WORKER_METRICS_PORT": free_port()})

    def fake(cluster: Cluster) -> Appliance:
        return FakeCluster.for_cluster(cluster, SystemClock(), **FAST_FAKE)

    worker = Worker(st.redis, settings, st.inventory, appliance_factory=fake,
                    name="metrics-worker", keys=st.keys)
    await worker.tally.feed.ensure_group()  # count from now on
    server = await serve_worker_metrics(worker.tally, st.redis, settings, worker.name,
                                        host="127.0.0.1")
    assert server is not None
    task = asyncio.create_task(worker.run())
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        worker.stop()
        await asyncio.wait_for(task, 10)
        await server.stop()


async def scrape(st: Stack, url: str) -> Samples:
    resp = await st.http.get(f"{url}/metrics")
    assert resp.status_code == 200
    out: Samples = {}
    for family in text_string_to_metric_families(resp.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def delta(after: Samples, before: Samples, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


async def test_the_new_metrics_move_during_an_upgrade(stack: StackFactory) -> None:
    st = await stack(PPS_ESCALATE_AFTER_SECONDS=0.5)
    async with metrics_worker(st) as url:
        health = await st.http.get(f"{url}/healthz")
        assert health.status_code == 200
        assert health.json() == {"ok": True, "redis": "ok", "worker": "metrics-worker"}
        before = await scrape(st, url)
        jid = await st.start_job("upgrade lab")
        disable = await st.open_gate(jid, Step.GATE_DISABLE)
        await asyncio.sleep(0.3)  # the gate waits a little
        await st.click(A1, disable, "pps_approve")
        enable = await st.open_gate(jid, Step.GATE_ENABLE)

        async def escalated() -> Samples | None:
            now = await scrape(st, url)
            return now if delta(now, before, "pps_escalations_total") == 1 else None

        during = await st.wait_for(escalated, what="the escalation counted")
        assert during[("pps_logins_disabled", ())] == 1  # lab has logins off right now
        assert delta(during, before, "pps_gate_wait_seconds_count", gate="gate_disable") == 1
        assert delta(during, before, "pps_gate_wait_seconds_sum", gate="gate_disable") >= 0.3
        assert delta(during, before, "pps_jobs_total", procedure="upgrade",
                     outcome="succeeded") == 0
        await st.click(A2, enable, "pps_approve")
        await st.card_in(jid, "succeeded")

        async def counted() -> Samples | None:
            now = await scrape(st, url)
            return now if delta(now, before, "pps_jobs_total", procedure="upgrade",
                                outcome="succeeded") == 1 else None

        after = await st.wait_for(counted, what="the finished job counted")
        job = await st.job(jid)
        assert job.logins_disabled_at is not None and job.logins_enabled_at is not None
        off = job.logins_enabled_at - job.logins_disabled_at
        assert after[("pps_logins_disabled", ())] == 0
        assert delta(after, before, "pps_gate_wait_seconds_count", gate="gate_enable") == 1
        assert delta(after, before, "pps_logins_disabled_seconds_count", procedure="upgrade") == 1
        assert abs(delta(after, before, "pps_logins_disabled_seconds_sum",
                         procedure="upgrade") - off) < 0.01
        assert delta(after, before, "pps_job_duration_seconds_count", procedure="upgrade") == 1
        took = delta(after, before, "pps_job_duration_seconds_sum", procedure="upgrade")
        assert off < took < 60
        assert delta(after, before, "pps_escalations_total") == 1


async def test_a_metrics_port_taken_by_another_worker_is_logged_not_fatal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import socket

    from starlette.applications import Starlette

    from jobs.worker import metrics_server

    # Two workers starting together: both bind (SO_REUSEADDR, nobody listens yet), the
    # other one listens first, ours then fails in listen().
    port = free_port()
    other = socket.socket()
    other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    other.bind(("127.0.0.1", port))

    class Racing(socket.socket):
        def bind(self, address: Any) -> None:
            super().bind(address)
            other.listen(1)

    monkeypatch.setattr(metrics_server.socket, "socket", Racing)
    server = metrics_server.MetricsServer(Starlette(), "127.0.0.1", port)
    try:
        assert not await server.start()  # logged; before, uvicorn exited the worker
    finally:
        await server.stop()
        other.close()
