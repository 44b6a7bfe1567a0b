"""The PPS cluster simulator: speaks the appliance API of PPS-API.md, one port per node and VIP.

- `simulator`: `Simulator`, several clusters in one process (`ppsbot simulator`).
- `app`: the Starlette app of one node; `listener`: its port; `control`: the control API.
- `state`: a cluster's live state (knobs, faults, write log); `upgrade`: the reboot timeline.
- `config`: the simulator's YAML config; `packages`: the firmware package file convention.
"""

from sim.pps.config import SimConfig, load_config
from sim.pps.simulator import Simulator

__all__ = ["SimConfig", "Simulator", "load_config"]
