"""The generated demo directory: a valid inventory and simulator config, and settings."""

from __future__ import annotations

import stat
from pathlib import Path

from jobs.config.inventory import load_inventory
from jobs.config.settings import Settings
from sim.demo.config import DEMO_TIMINGS, FAST_TIMINGS, write_demo
from sim.demo.stack import child_env
from sim.pps.config import load_config


def test_inventory_and_simulator_agree(tmp_path: Path) -> None:
    cfg = write_demo(tmp_path / "run", redis_url="redis://127.0.0.1:1/0", prefix="ppsdemo:t:")
    inv = load_inventory(cfg.inventory, env=cfg.env)  # checks package files and sha256
    assert {n: c.mode for n, c in inv.clusters.items()} == {
        "cluster-east": "active-passive",
        "cluster-west": "active-active",
        "lab": "standalone",
    }
    assert [len(c.nodes) for c in inv.clusters.values()] == [2, 3, 1]
    assert inv.clusters["cluster-east"].vip is not None
    assert inv.newest is not None and inv.newest.version == "9.1R18"
    assert inv.firmware_for("9.1R17") is not None  # the rollback copy KB12940 asks for

    sim = load_config(cfg.sim_config)
    by_name = {c.name: c for c in sim.clusters}
    for name, cluster in inv.clusters.items():
        sc = by_name[name]
        assert sc.mode == cluster.mode
        for node, simnode in zip(cluster.nodes, sc.nodes, strict=True):
            assert node.name == simnode.name
            assert node.url == f"http://127.0.0.1:{simnode.port}"
            assert simnode.build.startswith("9.1R17 ")
        user, password = cluster.credentials(cfg.env)
        assert (user, password) == (sc.username, sc.password)
    assert inv.clusters["cluster-east"].vip == f"http://127.0.0.1:{by_name['cluster-east'].vip_port}"
    ports = [*cfg.node_ports.values(), cfg.bot_port, cfg.standin_port]
    assert len(set(ports)) == len(ports)


def test_secrets_stay_out_of_the_inventory(tmp_path: Path) -> None:
    cfg = write_demo(tmp_path, redis_url="redis://127.0.0.1:1/0", prefix="p:")
    text = cfg.inventory.read_text()
    for name in ("PPS_DEMO_PASSWORD", "SLACK_SIGNING_SECRET", "SLACK_BOT_TOKEN"):
        assert cfg.env[name] not in text
    assert stat.S_IMODE(cfg.sim_config.stat().st_mode) == 0o600


def test_settings_are_the_demo_timings(tmp_path: Path) -> None:
    cfg = write_demo(tmp_path, redis_url="redis://127.0.0.1:1/0", prefix="ppsdemo:x:")
    s = Settings.model_validate(cfg.env)
    assert DEMO_TIMINGS.settle == 20.0
    assert {
        "settle": s.PPS_SETTLE_SECONDS,
        "prefix": s.PPS_REDIS_PREFIX,
        "channel": s.PPS_CHANNEL,
        "approvers": s.approvers,
        "two_person": s.PPS_TWO_PERSON_RULE,
        "api": s.SLACK_API_URL,
        "port": s.PORT,
        "app_token": s.SLACK_APP_TOKEN,  # None: HTTP mode, never Socket Mode to a real Slack
    } == {
        "settle": 20.0,
        "prefix": "ppsdemo:x:",
        "channel": "C0PPSDEMO",
        "approvers": ["S_APPROVERS", "U_REQUESTER"],
        "two_person": True,
        "api": f"http://127.0.0.1:{cfg.standin_port}/api/",
        "port": cfg.bot_port,
        "app_token": None,
    }
    fast = write_demo(tmp_path / "f", redis_url="r", prefix="p:", timings=FAST_TIMINGS)
    assert float(fast.env["PPS_SETTLE_SECONDS"]) == 2.0


def test_taken_page_port_falls_back_to_a_free_one(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        cfg = write_demo(tmp_path, redis_url="r", prefix="p:", standin_port=taken)
    assert cfg.standin_port != taken
    assert cfg.page_url == f"http://127.0.0.1:{cfg.standin_port}/"


def test_children_do_not_inherit_slack_or_pps_settings() -> None:
    parent = {"PATH": "/bin", "SLACK_APP_TOKEN": "xapp-real", "PPS_OPERATORS": "U1",
              "SLACK_BOT_TOKEN": "xoxb-real", "HOME": "/root"}
    env = child_env({"SLACK_BOT_TOKEN": "xoxb-demo", "PPS_CHANNEL": "C0PPSDEMO"}, base=parent)
    assert env["SLACK_BOT_TOKEN"] == "xoxb-demo"
    assert "SLACK_APP_TOKEN" not in env
    assert "PPS_OPERATORS" not in env
    assert env["PATH"] == "/bin" and env["PYTHONUNBUFFERED"] == "1"


def test_compose_demo_files(tmp_path: Path) -> None:
    from sim.demo.config import write_compose_demo

    env = {"PPS_DEMO_USERNAME": "admin", "PPS_DEMO_PASSWORD": "from-dotenv"}
    assert write_compose_demo(tmp_path / "nopw", {}) == 2
    assert not (tmp_path / "nopw" / "inventory.yml").exists()
    assert write_compose_demo(tmp_path, env) == 0
    inv = load_inventory(tmp_path / "inventory.yml", env=env)
    urls = [n.url for c in inv.clusters.values() for n in c.nodes]
    assert urls == [f"http://simulator:{p}" for p in (9001, 9002, 9004, 9005, 9006, 9007)]
    assert inv.clusters["cluster-east"].vip == "http://simulator:9003"
    sim = load_config(tmp_path / "sim.yml")
    assert sim.host == "0.0.0.0"
    assert {c.password for c in sim.clusters} == {"from-dotenv"}
    assert "from-dotenv" not in (tmp_path / "inventory.yml").read_text()
