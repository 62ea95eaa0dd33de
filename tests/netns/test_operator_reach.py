"""Who reaches the operator UI's port on the router, with the real ruleset in a real kernel.

The lab's names are `hst-<pid>-...` (tests/netns/lab.py), so this runs beside any other lab.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace

import pytest

from hotspotd import config
from hotspotd.daemon.main import firewall_settings
from hotspotd.net.firewall import NftFirewall
from tests.netns.conftest import PHONE1, PHONE2, Router
from tests.netns.lab import LAN_PREFIX, PORTAL_PORT, ROUTER_LAN, Lab

pytestmark = pytest.mark.netns

OPERATOR_PORT = 8444


@pytest.fixture
def operator_ui(router: Router) -> Iterator[None]:
    """A TCP service on the router's operator port, standing in for hotspot-operator."""
    lab = router.lab
    server = lab.serve("r", "serve-tcp", str(OPERATOR_PORT), str(lab.log("operator-ui")))
    try:
        yield
    finally:
        server.kill()
        server.wait(timeout=5)


def lab_config(**operator: object) -> config.Config:
    """The config a router like the lab's would have: hotspotd builds its table from it."""
    base = config.Config()
    return replace(
        base,
        network=replace(
            base.network,
            lan_interface="lan0",
            lan_prefix=config.ipaddress.IPv4Network(LAN_PREFIX),
            masquerade=False,  # the lab's upstream routes the LAN back
        ),
        portal=replace(
            base.portal, address=config.ipaddress.IPv4Address(ROUTER_LAN), port=PORTAL_PORT
        ),
        operator=replace(base.operator, port=OPERATOR_PORT, **operator),  # type: ignore[arg-type]
    )


def loaded(cfg: config.Config) -> NftFirewall:
    firewall = NftFirewall(**firewall_settings(cfg))
    firewall.setup()
    return firewall


def connect(lab: Lab, role: str, port: int) -> object:
    answer = lab.agent(role, "connect", ROUTER_LAN, str(port), timeout=3)
    assert answer["result"] != "refused" or answer["elapsed"] < 1.0, answer  # a reset, at once
    return answer["result"]


def test_the_operator_port_from_the_lan(router: Router, operator_ui: None) -> None:
    lab = router.lab
    # Before: the router's table knew only DHCP, DNS and the portal; the UI was out of reach.
    assert connect(lab, "p1", OPERATOR_PORT) == "refused"

    # Default: every device on the Wi-Fi connects (the manager's phone is one of them).
    every = loaded(lab_config())
    try:
        assert connect(lab, "p1", OPERATOR_PORT) == "connected"
        assert connect(lab, "p2", OPERATOR_PORT) == "connected"
    finally:
        every.close()

    # Only the manager's phone (p2): the resident (p1) cannot even connect, yet keeps the
    # portal and DNS; the manager keeps them too.
    only = loaded(lab_config(allow_macs=(PHONE2.mac,)))
    try:
        assert connect(lab, "p1", OPERATOR_PORT) == "refused"
        assert connect(lab, "p2", OPERATOR_PORT) == "connected"
        for role in ("p1", "p2"):
            assert connect(lab, role, PORTAL_PORT) == "connected"
            page = lab.agent(role, "http", f"http://{ROUTER_LAN}:{PORTAL_PORT}/")
            assert page["body"] == "PORTAL"
            assert lab.agent(role, "dns", ROUTER_LAN, "53", timeout=1.5)["answer"]
        listing = lab.exec("r", "nft", "list", "chain", "inet", "hotspot", "lan_local").stdout
        assert PHONE2.mac in listing and PHONE1.mac not in listing
    finally:
        only.close()

    # Not from the LAN at all (the UI then answers on the operator's interface only).
    closed = loaded(lab_config(from_lan=False))
    try:
        assert connect(lab, "p1", OPERATOR_PORT) == "refused"
        assert connect(lab, "p2", OPERATOR_PORT) == "refused"
        assert connect(lab, "p1", PORTAL_PORT) == "connected"
    finally:
        closed.close()


def test_a_device_taken_off_the_list_loses_its_open_connection(
    router: Router, operator_ui: None
) -> None:
    """Decided on every packet: reloading the table with a shorter list cuts an open
    connection at its next packet, it does not ride on as "established"."""
    lab = router.lab
    both = loaded(lab_config(allow_macs=(PHONE1.mac, PHONE2.mac)))
    try:
        holding = lab.start_agent("p1", "hold", ROUTER_LAN, str(OPERATOR_PORT), "8")
        assert holding.stdout is not None
        assert "ok" in json.loads(holding.stdout.readline())  # open, echoing
        loaded(lab_config(allow_macs=(PHONE2.mac,))).close()
        out, _ = holding.communicate(timeout=30)
        last = json.loads(out.splitlines()[-1])
        assert last.get("error") == "reset" and last["t"] < 4, out
    finally:
        both.close()
