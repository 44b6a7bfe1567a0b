"""Every appliance call has a whole-call deadline and every answer a size cap (issue 9.4).

httpx's read timeout is per read: a node that drips a byte now and then never trips it, and
httpx buffers a whole answer. Against the simulator's `drip_seconds` and `huge_reply_bytes`
faults, and a local transport for what the simulator cannot send. Each test prints its
figure (`budget-figure ...`).
"""

from __future__ import annotations

import asyncio
import time
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from jobs.appliance.client import PpsClient, make_appliance
from jobs.appliance.policy import Limits, MiB, Timeouts
from jobs.appliance.protocol import Rejected, Unreachable
from jobs.config.inventory import Cluster, Node
from jobs.config.settings import Settings
from tests.appliance.appliance_support import cluster_of

STANDALONE = {"mode": "standalone", "nodes": ["solo"]}
WATCHDOG = 10.0  # the old client kept such a call running for minutes to hours


def _env(sim: Any) -> dict[str, str]:
    c = sim.cluster("c")
    return {"U": c.username, "P": c.password}


async def test_drip_fed_answer_ends_at_the_call_deadline(start_sim: Any) -> None:
    # One byte every 0.3 s never trips the 2 s read timeout: the answer alone (about 400
    # bytes) would take two minutes, the login's answer before it another 15 s.
    sim = await start_sim({"c": {**STANDALONE, "faults": {"drip_seconds": 0.3}}})
    settings = Settings(_env_file=None, PPS_POLL_SECONDS=1.0, PPS_CALL_TIMEOUT_SECONDS=1.5)
    client = make_appliance(cluster_of(sim, "c"), env=_env(sim), settings=settings)
    t0 = time.monotonic()
    async with client:
        with pytest.raises(Unreachable, match=r"within 1.5 s \(call deadline\)"):
            await asyncio.wait_for(client.system_info("solo"), WATCHDOG)
    took = time.monotonic() - t0
    print(f"budget-figure drip-fed call: {took:.2f} s (deadline 1.5 s)")
    assert took < 3.0


async def test_deadline_covers_the_retries_of_a_read(start_sim: Any) -> None:
    # Every answer is slow and a 503: three attempts with backoff would take over 3 s.
    sim = await start_sim(
        {"c": {**STANDALONE, "faults": {"flap_503": 100, "slow_seconds": 0.4}}}
    )
    c = sim.cluster("c")
    client = PpsClient(
        cluster_of(sim, "c"),
        c.username,
        c.password,
        timeouts=Timeouts(connect=1.0, read=2.0, total=1.0),
    )
    t0 = time.monotonic()
    async with client:
        with pytest.raises(Unreachable, match="call deadline"):
            await client.system_info("solo")
    assert time.monotonic() - t0 < 2.0
    assert c.node("solo").requests >= 2  # it did retry within the deadline


async def test_huge_answer_is_refused_at_the_cap_without_buffering_it(
    start_sim: Any
) -> None:
    size = 300 * MiB
    sim = await start_sim({"c": {**STANDALONE, "faults": {"huge_reply_bytes": size}}})
    client = make_appliance(cluster_of(sim, "c"), env=_env(sim), settings=Settings())
    async with client:
        await client.session.api_key("solo")  # log in first: measure the read alone
        tracemalloc.start()
        try:
            t0 = time.monotonic()
            with pytest.raises(Rejected, match="answer larger than 8 MiB; not read"):
                await asyncio.wait_for(client.system_info("solo"), WATCHDOG)
            took = time.monotonic() - t0
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    print(f"budget-figure 300 MiB answer: peak {peak / MiB:.1f} MiB traced, {took:.2f} s")
    assert peak < 40 * MiB


async def test_exports_have_their_own_larger_cap(start_sim: Any) -> None:
    # The simulator's exports are about 2.9 kB of base64; JSON answers padded to 5 kB.
    sim = await start_sim({"c": {**STANDALONE, "faults": {"huge_reply_bytes": 5000}}})
    c = sim.cluster("c")
    client = PpsClient(
        cluster_of(sim, "c"), c.username, c.password, limits=Limits(json=4000, export=4000)
    )
    async with client:
        assert (await client.export_config("solo", "system")).startswith(b"PPS-SIM-CONFIG")
        with pytest.raises(Rejected, match=r"larger than 3\.90625 KiB"):
            await client.system_info("solo")


def test_export_cap_comes_from_the_settings() -> None:
    cluster = Cluster("c", "standalone", (Node("solo", "http://127.0.0.1:9"),), "U", "P")
    settings = Settings(_env_file=None, PPS_EXPORT_MAX_MB=3, PPS_TRANSFER_TIMEOUT_SECONDS=60)
    client = make_appliance(cluster, env={"U": "u", "P": "p"}, settings=settings)
    assert client.session.limits.export == 3 * MiB
    assert client.session.limits.json == 8 * MiB
    assert client.session.timeouts.transfer == 60.0
    assert client.session.timeouts.total == settings.PPS_CALL_TIMEOUT_SECONDS == 30.0


class CountingStream(httpx.AsyncByteStream):
    """A body of `chunks` chunks of 64 KiB that counts what the client pulled."""

    def __init__(self, chunks: int) -> None:
        self.chunks = chunks
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            self.pulled += 1
            yield b"x" * 65536


def local_client(answer: httpx.Response) -> PpsClient:
    """A client whose every API call but the login gets `answer`."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/realm_auth"):
            return httpx.Response(200, json={"api_key": "k"})
        return answer

    cluster = Cluster("c", "standalone", (Node("solo", "http://solo.test"),), "U", "P")
    return PpsClient(cluster, "admin", "pw", transport=httpx.MockTransport(handler))


async def test_announced_length_over_the_cap_is_refused_unread() -> None:
    stream = CountingStream(1000)  # 62.5 MiB
    answer = httpx.Response(200, headers={"Content-Length": str(1000 * 65536)}, stream=stream)
    async with local_client(answer) as client:
        with pytest.raises(Rejected, match="larger than 8 MiB"):
            await client.overview("solo")
    assert stream.pulled == 0


async def test_error_answer_is_read_only_up_to_its_first_bytes() -> None:
    stream = CountingStream(1000)
    answer = httpx.Response(500, headers={"Content-Type": "text/plain"}, stream=stream)
    async with local_client(answer) as client:
        with pytest.raises(Rejected) as err:
            await client.set_login_permission("solo", False)  # a write: sent once
    assert err.value.status == 500
    assert len(err.value.message) < 200
    assert stream.pulled <= 2  # 64 KiB of error text at most, not 62.5 MiB
