"""Fixtures for the real-kernel tests: one lab of namespaces per session, a fresh firewall and
shaper in the router per test, and both always removed (even when a test fails).

Without root or a tool the tests skip; with CI=true they fail instead (tests.conftest.require).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from hotspotd.core.ports import DeviceKey, Rate
from hotspotd.net.firewall import NftFirewall
from hotspotd.net.shaper import TcShaper
from tests.conftest import require
from tests.netns.lab import (
    LAN_PREFIX,
    PHONE1,
    PHONE2,
    PORTAL_PORT,
    REQUIRED_TOOLS,
    ROUTER_LAN,
    Host,
    Lab,
    inside,
)

if TYPE_CHECKING:
    from tests.netns.test_daemon import Daemon

UPLINK = Rate(down_bps=100_000_000, up_bps=100_000_000)


def key_of(host: Host) -> DeviceKey:
    assert host.ip is not None
    return DeviceKey(IPv4Address(host.ip), host.mac)


def check_requirements() -> None:
    require(os.geteuid() == 0, "needs root (network namespaces)")
    for tool in REQUIRED_TOOLS:
        require(shutil.which(tool) is not None, f"needs the {tool} command")


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    check_requirements()
    world = Lab()
    world.build()
    try:
        yield world
    finally:
        world.destroy()


@dataclass
class Router:
    lab: Lab
    firewall: NftFirewall
    shaper: TcShaper


@pytest.fixture
def router(lab: Lab) -> Iterator[Router]:
    """Our firewall and shaper, freshly set up in the router namespace for one test."""
    with inside(lab.ns("r")):
        firewall = NftFirewall(lan_interface="lan0", portal_ip=ROUTER_LAN, portal_port=PORTAL_PORT)
        shaper = TcShaper(lan_interface="lan0", lan_prefix=LAN_PREFIX, ifb="ifb0")
        try:
            firewall.setup()
            shaper.setup(UPLINK)
            yield Router(lab, firewall, shaper)
        finally:
            firewall.teardown()
            firewall.close()
            shaper.teardown()
            lab.exec("r", "ip", "neigh", "flush", "dev", "lan0")


@pytest.fixture
def daemon(lab: Lab, tmp_path: Path) -> Iterator[Daemon]:
    """The real hotspotd in the lab's router, on its own database; always flushed after."""
    from tests.netns.test_daemon import Daemon

    d = Daemon(lab, tmp_path)
    d.flush()  # whatever an earlier test left
    try:
        yield d
    finally:
        if d.proc is not None and d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait(timeout=10)
        d.flush()
        lab.exec("r", "ip", "neigh", "flush", "dev", "lan0")
        lab.exec("r", "sysctl", "-qw", "net.ipv4.ip_forward=1")  # as the lab had it


__all__ = ["PHONE1", "PHONE2", "Router", "key_of"]
