"""`make bench` at its tiny size: every benchmark runs against real processes, real Redis
and the stand-ins and reports a figure for each item (the figures are not asserted)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from benchmarks.run import TINY, Size, run

pytestmark = pytest.mark.slow


def test_tiny_bench_reports_every_item(redis_url: str, tmp_path: Path) -> None:
    size = Size("tiny", clusters=3, gates=2, timers=5, concurrency=(2,), rounds=1,
                per_client=1)
    assert size.clusters <= TINY.clusters
    out = tmp_path / "results.json"
    res = run(size, redis_url, out)
    data = json.loads(out.read_text())
    assert {f["item"] for f in data["figures"]} == {"1", "2", "3", "6"}
    writes = res.details["many_upgrades"]["writes"]
    assert writes["clusters"] == 3 and writes["not_exactly_one_each"] == {}
    assert res.details["many_upgrades"]["succeeded"] == 3
    ack = next(f for f in res.figures if f.item == "1")
    assert ack.baseline is not None and math.isfinite(ack.value) and ack.value > 0
    assert res.details["click_to_appliance"]["gates"] == 2
    assert data["machine"]["redis"]
