"""`make bench` at its tiny size: every benchmark runs against real processes, real Redis
and the stand-ins and reports a figure for each item (the figures are not asserted)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks.run import TINY, run

pytestmark = pytest.mark.slow


def test_tiny_bench_reports_every_item(redis_url: str, tmp_path: Path) -> None:
    size = replace(TINY, clusters=3, gates=2, timers=5, concurrency=(2,), rounds=1,
                   per_client=1, load_gates=1, variant_clusters=2, upload_seconds=1.0)
    assert size.clusters <= TINY.clusters
    out = tmp_path / "results.json"
    res = run(size, redis_url, out)
    data = json.loads(out.read_text())
    assert {f["item"] for f in data["figures"]} == {"1", "2", "3", "4", "5", "6"}
    names = [f.name for f in res.figures]
    d = res.details
    writes = d["many_upgrades"]["writes"]
    assert writes["clusters"] == 3 and writes["not_exactly_one_each"] == {}
    assert d["many_upgrades"]["succeeded"] == 3
    ack = next(f for f in res.figures if f.item == "1")
    assert ack.baseline is not None and math.isfinite(ack.value) and ack.value > 0
    assert d["click_to_appliance"]["gates"] == 2
    assert data["machine"]["redis"]
    failed = [f for f in res.figures if f.name.startswith("commands answered")]
    assert [f.value for f in failed] == [0, 0]  # idle and under load: no failure replies
    # Items 1 and 2 while item 3's load ran (a sample after the load ended is dropped), in
    # deployment A at this size: no deployment D.
    assert set(d["deployments"]) == {"A", "B", "C"}
    under = [f for f in res.figures
             if f.name.startswith("ack ") and f.name.endswith("under item 3 load")]
    assert {f.item for f in under} == {"1"} and all(f.baseline is not None for f in under)
    assert any(n.startswith("click -> disable write p99, under item 3 load") for n in names)
    assert d["under_load"]["load"]["succeeded"] == 3
    assert d["under_load"]["click_to_appliance"]["gates"] + d["under_load"]["dropped"][
        "clicks"] == 1
    # Item 3 with 4 workers, beside the 2-worker ratios.
    scaled = d["many_upgrades_scaled"]
    assert scaled["workers"] == 4 and scaled["succeeded"] == 3
    assert scaled["writes"]["not_exactly_one_each"] == {}
    # At the tiny size B's ratios are over A's jobs alone (none runs alone again).
    assert scaled["alone_from"] == "2 workers"
    assert scaled["alone_seconds"] == d["many_upgrades"]["alone_seconds"]
    four = next(f for f in res.figures
                if f.name == "job duration max, 3 at once / alone, 4 workers")
    assert four.baseline == d["many_upgrades"]["ratio"]["max"]
    assert {"peak RSS worker-4, 4 workers", "peak RSS bot, 4 workers"} <= set(names)
    # Item 4: one upload throttled, the others beside their alone figure.
    throttled = d["upload_throttled"]
    assert throttled["succeeded"] == 3 and throttled["writes"]["not_exactly_one_each"] == {}
    assert throttled["throttled_seconds"] >= 1.0
    base = throttled["unthrottled"]  # the same load first, no upload throttled
    assert base["succeeded"] == 3 and base["writes"]["not_exactly_one_each"] == {}
    most = next(f for f in res.figures
                if f.name == "job duration max of the others, one upload throttled / alone")
    assert most.baseline == base["ratio"]["max"]
    # Item 5: the stand-in's rate limits on, beside the limits-off figure.
    limited = d["slack_limits"]
    assert limited["succeeded"] == 3 and limited["rate_limit_per_second"] == TINY.rate_limit
    assert limited["drain_quiet_seconds"] == TINY.drain_quiet
    p99 = next(f for f in res.figures if f.name == "gate opened -> message visible p99, limits on")
    assert p99.baseline == base["gate_visible_ms"]["p99"]
