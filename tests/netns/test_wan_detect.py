"""WAN detection reads the real default route of the namespace it runs in."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import require_root_and

pytestmark = pytest.mark.netns


def run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=30).stdout


def test_wan_interface_is_the_default_route_interface() -> None:
    require_root_and("ip")
    ns = f"hstw-{os.getpid()}"
    subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
    run("ip", "netns", "add", ns)
    try:
        probe = "from hotspotd.config import detect_wan_interface as d; print(d())"
        run("ip", "-n", ns, "link", "set", "lo", "up")
        assert run("ip", "netns", "exec", ns, sys.executable, "-c", probe).strip() == "None"
        # veth pairs inside the namespace (this kernel has no dummy devices)
        run("ip", "-n", ns, "link", "add", "uplink7", "type", "veth", "peer", "name", "up7peer")
        run("ip", "-n", ns, "link", "add", "lan7", "type", "veth", "peer", "name", "lan7peer")
        for peer in ("up7peer", "lan7peer"):
            run("ip", "-n", ns, "link", "set", peer, "up")
        for dev, addr in (("uplink7", "198.18.7.2/24"), ("lan7", "10.66.0.1/16")):
            run("ip", "-n", ns, "addr", "add", addr, "dev", dev)
            run("ip", "-n", ns, "link", "set", dev, "up")
        run("ip", "-n", ns, "route", "add", "default", "via", "198.18.7.1", "dev", "uplink7")
        assert run("ip", "netns", "exec", ns, sys.executable, "-c", probe).strip() == "uplink7"
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
