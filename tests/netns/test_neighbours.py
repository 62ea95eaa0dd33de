"""MAC lookup on a real LAN: table first, ARP probe when missing, nobody means None."""

from __future__ import annotations

import time
from ipaddress import IPv4Address

import pytest

# Imported here, in the host's namespace, on purpose: scapy takes its default interface and
# addresses from where it is first imported, and the probe must not depend on them.
import scapy.all  # noqa: F401

from hotspotd.net.neighbours import TRUSTED_STATES, NeighbourTable
from tests.netns.conftest import PHONE1, PHONE2, key_of
from tests.netns.lab import ROGUE, ROUTER_LAN, Lab, inside

pytestmark = pytest.mark.netns


def test_missing_entry_is_probed_and_nobody_gives_none(lab: Lab) -> None:
    lab.exec("r", "ip", "neigh", "flush", "dev", "lan0")
    with inside(lab.ns("r")):
        table = NeighbourTable("lan0", probe_timeout=0.5)
        assert table.lookup(key_of(PHONE1).ip) is None
        assert table.mac_of(key_of(PHONE1).ip) == PHONE1.mac
        start = time.monotonic()
        assert table.mac_of(IPv4Address("10.66.9.9")) is None
        assert time.monotonic() - start < 2.0


def test_confirmed_entry_is_used_without_probing(lab: Lab) -> None:
    lab.agent("p2", "http", f"http://{ROUTER_LAN}:8080/")  # traffic: the kernel confirms it
    with inside(lab.ns("r")):
        table = NeighbourTable("lan0")
        entry = table.lookup(key_of(PHONE2).ip)
        assert entry is not None and entry[0] == PHONE2.mac and entry[1] & TRUSTED_STATES

        def no_probe(ip: IPv4Address) -> list[str]:
            raise AssertionError("probed although the table had a confirmed entry")

        table.probe = no_probe  # type: ignore[method-assign]
        assert table.mac_of(key_of(PHONE2).ip) == PHONE2.mac


def test_probe_sees_two_hosts_claiming_one_address(lab: Lab) -> None:
    assert PHONE1.ip is not None
    lab.exec("rogue", "ip", "addr", "add", f"{PHONE1.ip}/16", "dev", "eth0", "nodad")
    try:
        with inside(lab.ns("r")):
            answers = NeighbourTable("lan0", probe_timeout=0.5).probe(key_of(PHONE1).ip)
        assert sorted(answers) == sorted([PHONE1.mac, ROGUE.mac])
    finally:
        lab.exec("rogue", "ip", "addr", "flush", "dev", "eth0")
        lab.exec("r", "ip", "neigh", "flush", "dev", "lan0")


def test_presence_is_the_same_mac_answering_and_a_phone_gone_is_not_present(lab: Lab) -> None:
    ip = key_of(PHONE1).ip
    with inside(lab.ns("r")):
        table = NeighbourTable("lan0", probe_timeout=0.5)
        assert table.present(ip, PHONE1.mac) is True
        assert table.present(ip, "02:66:00:00:0f:0f") is False  # someone else's address
    # The phone went home: it answers no ARP any more. (Not `link down`: that would take the
    # phone's default route with it, and the lab is shared by the other tests.)
    lab.exec("p1", "ip", "link", "set", "eth0", "arp", "off")
    try:
        lab.exec("r", "ip", "neigh", "flush", "dev", "lan0")
        with inside(lab.ns("r")):
            assert NeighbourTable("lan0", probe_timeout=0.5).present(ip, PHONE1.mac) is False
    finally:
        lab.exec("p1", "ip", "link", "set", "eth0", "arp", "on")
    with inside(lab.ns("r")):
        assert NeighbourTable("lan0", probe_timeout=0.5).present(ip, PHONE1.mac) is True
