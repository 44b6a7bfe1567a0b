"""The whole path, every part real: signed `/pps` and clicks -> the bot over HTTP -> Redis ->
an in-process worker -> the httpx PPS client -> the cluster simulator over HTTP -> events ->
the notifier -> the Slack stand-in, until the card shows `succeeded`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jobs.appliance.client import make_appliance
from jobs.appliance.protocol import Appliance
from jobs.config.inventory import Cluster, parse_inventory
from jobs.rules.model import State, Step
from sim.pps.config import parse_config
from sim.pps.simulator import Simulator
from tests.fakes import sim_firmware
from tests.slack.slack_stack import StackFactory

REQ, A1, A2 = "U_REQUESTER", "U_APPROVER1", "U_APPROVER2"
TARGET = "9.1R18 (build 29865)"
FAST = {"install_seconds": 0.1, "reboot_seconds": 0.3, "rejoin_seconds": 0.1}


async def test_slack_e2e_upgrade_through_the_simulator(
    stack: StackFactory, tmp_path: Path
) -> None:
    sim = Simulator(parse_config({"clusters": {"cluster-east": {
        "mode": "active-passive", "nodes": ["east-a", "east-b"], "sessions": 412,
        "knobs": FAST}}}, Path(".")))
    await sim.start()
    try:
        data = sim.inventory(sim_firmware(tmp_path))
        data["clusters"]["cluster-east"]["channel"] = "C_EAST"
        env = sim.credentials_env()
        inventory = parse_inventory(data, tmp_path, env=env)
        holder: dict[str, Any] = {}

        def appliance(cluster: Cluster) -> Appliance:
            return make_appliance(cluster, env=env, settings=holder["settings"])

        st = await stack(worker=True, inventory=inventory, appliance=appliance,
                         PPS_SETTLE_SECONDS=0.3, PPS_LEASE_SECONDS=2.0)
        holder["settings"] = st.settings
        jid = await st.start_job("upgrade cluster-east 9.1R18")
        disable = await st.open_gate(jid, Step.GATE_DISABLE)
        assert "412 active sessions will be cut" in json.dumps(disable.blocks)
        await st.click(REQ, disable, "pps_approve")  # the requester: refused
        await st.ephemeral_containing(REQ, "Two-person rule")
        await st.click(A1, disable, "pps_approve")
        await st.click(A2, await st.open_gate(jid, Step.GATE_ENABLE), "pps_approve")
        card = await st.card_in(jid, "succeeded", summary="upgraded to")
        job = await st.job(jid)
        assert job.state is State.SUCCEEDED and not job.logins_disabled
        assert [n.build for n in sim.cluster("cluster-east").nodes] == [TARGET, TARGET]
        assert sim.cluster("cluster-east").login_permission is True
        assert len(st.cards(jid)) == 1
        thread = " ".join(m.text + json.dumps(m.blocks, ensure_ascii=False)
                          for m in st.thread(card))
        assert "VIP" in thread and "cluster-east upgraded to 9.1R18" in thread
        assert TARGET in thread and "system.cfg" in thread
    finally:
        await sim.stop()
