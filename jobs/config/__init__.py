"""Configuration and process basics: settings, the inventory (clusters, firmware catalogue,
maintenance windows), the clock, and logging.

- `settings`: `Settings` (environment and `.env`), `get_settings`.
- `inventory`: `load_inventory`/`parse_inventory` -> `Inventory` of `Cluster`, `Node`, `Firmware`.
- `window`: maintenance windows (`Sat 01:00-05:00 Europe/Berlin`).
- `clock`: the `Clock` Protocol and `SystemClock`; tests inject a fake one.
- `log`: structured logging (structlog, JSON in production), secrets dropped.
"""

from jobs.config.clock import Clock, SystemClock, ms
from jobs.config.inventory import (
    Cluster,
    Firmware,
    Inventory,
    InventoryError,
    Node,
    load_inventory,
    parse_inventory,
)
from jobs.config.settings import Settings, get_settings
from jobs.config.window import Window, parse_window

__all__ = [
    "Clock",
    "Cluster",
    "Firmware",
    "Inventory",
    "InventoryError",
    "Node",
    "Settings",
    "SystemClock",
    "Window",
    "get_settings",
    "load_inventory",
    "ms",
    "parse_inventory",
    "parse_window",
]
