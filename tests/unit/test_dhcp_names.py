"""DHCP sightings: names from real DHCP packets built with scapy, made safe for display."""

from __future__ import annotations

from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from hotspotd.net.dhcp_sniffer import DhcpSighting, DhcpSniffer, sighting_from_options


def packet(msg: str, **opts: object) -> Ether:
    mac = bytes.fromhex("02aabbccdd01")
    options = [("message-type", msg), *opts.items(), "end"]
    return (
        Ether(src="02:aa:bb:cc:dd:01", dst="ff:ff:ff:ff:ff:ff")
        / IP(src="0.0.0.0", dst="255.255.255.255")
        / UDP(sport=68, dport=67)
        / BOOTP(chaddr=mac + b"\0" * 10)
        / DHCP(options=options)
    )


def test_request_gives_hostname_and_vendor() -> None:
    seen: list[DhcpSighting] = []
    sniffer = DhcpSniffer("lo", seen.append)
    wire = Ether(
        bytes(packet("request", hostname=b"Galaxy-A05", vendor_class_id=b"android-dhcp-14"))
    )
    sniffer._packet(wire)
    assert seen == [DhcpSighting("02:aa:bb:cc:dd:01", "Galaxy-A05", "android-dhcp-14")]


def test_offers_and_nameless_requests_are_ignored() -> None:
    seen: list[DhcpSighting] = []
    sniffer = DhcpSniffer("lo", seen.append)
    sniffer._packet(Ether(bytes(packet("offer", hostname=b"router"))))
    sniffer._packet(Ether(bytes(packet("request"))))
    assert seen == []


def test_control_characters_and_markup_bytes_are_dropped_and_length_capped() -> None:
    chaddr = bytes.fromhex("02aabbccdd02")
    s = sighting_from_options(
        chaddr, [("message-type", 3), ("hostname", b"\x1b[31mEvil\x00" + b"x" * 200)]
    )
    assert s is not None and s.hostname is not None
    assert s.hostname.startswith("[31mEvil") and len(s.hostname) == 64
    assert "\x1b" not in s.hostname and "\x00" not in s.hostname


def test_a_request_naming_another_mac_than_its_sender_names_nobody() -> None:
    seen: list[DhcpSighting] = []
    sniffer = DhcpSniffer("lo", seen.append)
    forged = packet("request", hostname=b"flood")
    forged[Ether].src = "02:aa:bb:cc:dd:99"  # chaddr stays 02:aa:bb:cc:dd:01
    sniffer._packet(Ether(bytes(forged)))
    assert seen == []
