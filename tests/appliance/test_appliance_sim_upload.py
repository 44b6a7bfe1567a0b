"""The simulator's `upload_seconds` knob: an install's package upload over a slow link."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx

from sim.pps.config import parse_config
from sim.pps.packages import build_string, write_package
from tests.appliance.appliance_support import FAST, client_of, wait_for

TARGET = build_string("9.1R18", 29865)


def test_upload_seconds_is_a_knob_of_the_config() -> None:
    cfg = parse_config(
        {"clusters": {"c": {"mode": "standalone", "nodes": ["solo"],
                            "knobs": {"upload_seconds": 2.5}}}},
        Path("."),
    )
    assert cfg.clusters[0].knobs.upload_seconds == 2.5


async def test_a_throttled_upload_takes_its_time_and_blocks_nothing_else(
    start_sim: Any, tmp_path: Path
) -> None:
    sim = await start_sim({"c": {"mode": "standalone", "nodes": ["solo"], "knobs": FAST}})
    c = sim.cluster("c")
    pkg = tmp_path / "p.pkg"
    write_package(pkg, "9.1R18", 29865, size=256 * 1024)
    async with httpx.AsyncClient() as http, client_of(sim, "c", attempts=1) as client:
        r = await http.patch(f"{sim.control_url}/_sim/clusters/c",
                             json={"knobs": {"upload_seconds": 1.0}})
        assert r.status_code == 200 and r.json()["knobs"]["upload_seconds"] == 1.0
        await client.system_info("solo")  # logged in before the upload
        t0 = time.monotonic()
        upload = asyncio.create_task(client.install("solo", pkg))
        await asyncio.sleep(0.3)
        # Still arriving: nothing installs yet, and the node answers other calls at once.
        assert not upload.done() and not c.upgrading and c.node("solo").phase == "up"
        t1 = time.monotonic()
        assert (await client.system_info("solo")).build != TARGET
        assert time.monotonic() - t1 < 0.5
        await upload
        took = time.monotonic() - t0
    assert 1.0 <= took < 3.0
    (entry,) = c.log
    assert (entry.call, entry.detail, entry.status) == ("install", TARGET, 202)
    assert entry.at - entry.received_at >= 0.95  # the answer came once the upload was done
    await wait_for(lambda: c.node("solo").build == TARGET and not c.upgrading)
