"""The demo lab: the whole village hotspot in network namespaces (`scripts/demo`, tests/e2e).

Run from the clone's root as `python -m devtools.lab up|down|json`. Stdlib only at import time,
so `python3 -m devtools.lab down` works without the venv.
"""

from __future__ import annotations

from devtools.lab.build import (
    GARDEN_HOST,
    LAN_ADDR,
    NET_DNS,
    NET_GARDEN,
    NET_WEB,
    PHONES,
    PORTAL_HOST,
    REQUIRED_TOOLS,
    ROUTER,
    STATE,
    TEST_HOST,
    UPSTREAM,
    Lab,
    LabError,
    down,
    in_ns,
    load_running,
    run,
)

__all__ = [
    "GARDEN_HOST",
    "LAN_ADDR",
    "NET_DNS",
    "NET_GARDEN",
    "NET_WEB",
    "PHONES",
    "PORTAL_HOST",
    "REQUIRED_TOOLS",
    "ROUTER",
    "STATE",
    "TEST_HOST",
    "UPSTREAM",
    "Lab",
    "LabError",
    "down",
    "in_ns",
    "load_running",
    "run",
]
