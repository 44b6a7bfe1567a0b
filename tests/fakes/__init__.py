"""Shared fakes and builders for the tests (never shipped in the wheel): `from tests.fakes
import ...`.

- `clock`: `FakeClock`.
- `node`: a fake node's timeline (phases of an upgrade, boot, builds at time t).
- `appliance`: `FakeCluster`, an in-memory `Appliance` for a whole cluster.
- `memory_store`: `MemoryStore`, the store Protocols of `jobs.store.ports` in memory.
- `harness`: drives the real steps of a job on a `FakeCluster` through the real rules.
- `builders`: settings (with timing presets), firmware files, inventories, a fake cluster.
- `job_driver`: a worker in the background and a job driven through `JobService`.
- `logs`: `Recorder`, a structlog logger stand-in that keeps what was logged.
- `messages`: a Slack message's buttons, anything as searchable JSON text.
- `net`: a bound socket or a free port on 127.0.0.1, uvicorn serving on it.
- `processes`: the repository root, `ppsbot`, a child's environment for this checkout.
- `bot_process`: a `ppsbot bot` child process on its own port and key prefix.
"""

from tests.fakes.appliance import FakeCluster, Fault
from tests.fakes.builders import (
    E2E_TIMINGS,
    ENV,
    NODES,
    REAL_TIMINGS,
    RUNNING,
    TARGET_BUILD,
    VERSIONS,
    WORKER_TIMINGS,
    cluster_entry,
    inventory_data,
    make_inventory,
    make_settings,
    new_fake,
    package_name,
    sim_firmware,
    write_firmware,
    write_inventory,
)
from tests.fakes.clock import FakeClock
from tests.fakes.harness import Harness, new_harness
from tests.fakes.job_driver import JobDriver, run_worker
from tests.fakes.logs import Recorder
from tests.fakes.messages import blob, buttons, has_buttons
from tests.fakes.net import bound_socket, free_port, serve, url_of
from tests.fakes.processes import PPSBOT, PYTHON, REDIS_URL, ROOT, child_env

__all__ = [
    "E2E_TIMINGS",
    "ENV",
    "NODES",
    "PPSBOT",
    "PYTHON",
    "REAL_TIMINGS",
    "REDIS_URL",
    "ROOT",
    "RUNNING",
    "TARGET_BUILD",
    "VERSIONS",
    "WORKER_TIMINGS",
    "FakeClock",
    "FakeCluster",
    "Fault",
    "Harness",
    "JobDriver",
    "Recorder",
    "blob",
    "bound_socket",
    "buttons",
    "child_env",
    "cluster_entry",
    "free_port",
    "has_buttons",
    "inventory_data",
    "make_inventory",
    "make_settings",
    "new_fake",
    "new_harness",
    "package_name",
    "run_worker",
    "serve",
    "sim_firmware",
    "url_of",
    "write_firmware",
    "write_inventory",
]
