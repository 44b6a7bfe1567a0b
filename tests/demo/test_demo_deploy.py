"""deploy/ and the compose file wire the worker's metrics (issue 11, item 5): the port, the
health check on /healthz, Prometheus finding every worker replica, and a Grafana dashboard
with a panel on each metric that matters. Parsed, not run (no Docker engine here)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from jobs.config.settings import Settings
from tests.fakes import ROOT

DEPLOY = ROOT / "deploy"
METRICS = ("pps_jobs_total", "pps_job_duration_seconds", "pps_logins_disabled_seconds",
           "pps_gate_wait_seconds", "pps_logins_disabled", "pps_escalations_total")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def test_the_workers_serve_metrics_on_the_default_port(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    port = Settings.model_fields["PPS_WORKER_METRICS_PORT"].default
    assert worker["environment"]["PPS_WORKER_METRICS_PORT"] == str(port) == "9102"
    assert str(port) in worker["expose"]
    assert f"127.0.0.1:{port}/healthz" in " ".join(worker["healthcheck"]["test"])


def test_prometheus_scrapes_the_bot_and_every_worker(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["monitoring"]
    prom = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
    assert jobs["pps-bot"]["static_configs"][0]["targets"] == ["bot:3000"]
    (sd,) = jobs["pps-worker"]["dns_sd_configs"]
    assert sd["names"] == ["worker"] and sd["port"] == 9102 and sd["type"] == "A"
    mounts = " ".join(services["prometheus"]["volumes"] + services["grafana"]["volumes"])
    for path in ("./deploy/prometheus.yml", "./deploy/grafana/provisioning",
                 "./deploy/grafana/dashboards"):
        assert path in mounts
        assert (ROOT / path).exists()


def test_the_dashboard_has_a_panel_for_each_metric_that_matters() -> None:
    dash = json.loads((DEPLOY / "grafana" / "dashboards" / "pps-chatops.json").read_text())
    panels = dash["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    for p in panels:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24 and p["targets"]
        assert p["datasource"]["uid"] == "${datasource}"
    exprs = " ".join(t["expr"] for p in panels for t in p["targets"])
    for metric in METRICS:
        assert metric in exprs, metric
    (var,) = dash["templating"]["list"]
    source = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" /
                             "prometheus.yml").read_text())["datasources"][0]
    assert var["type"] == "datasource" and var["current"]["value"] == source["uid"]
