"""Device names from DHCP: hostnames and vendor classes seen on the LAN, for the operator's lists.

Phones announce a hostname (option 12) and often a vendor class (option 60, e.g.
"android-dhcp-13") in their DHCP requests. Sniffing needs CAP_NET_RAW; without it the daemon
logs once and carries on without names.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hotspotd.core.ports import normalize_mac

log = logging.getLogger("hotspotd.dhcp")

_PRINTABLE = set(range(0x20, 0x7F))


@dataclass(frozen=True)
class DhcpSighting:
    mac: str
    hostname: str | None
    vendor_class: str | None


def _text(value: Any, limit: int = 64) -> str | None:
    """Option bytes as safe text: printable ASCII only, trimmed; None if nothing is left."""
    if isinstance(value, str):
        value = value.encode("latin-1", "replace")
    if not isinstance(value, bytes | bytearray):
        return None
    cleaned = bytes(b for b in value if b in _PRINTABLE).decode("ascii").strip()
    return cleaned[:limit] or None


def sighting_from_options(
    chaddr: bytes, options: list[Any], source: str | None = None
) -> DhcpSighting | None:
    """Pure part: the client's MAC, hostname and vendor class from a DHCP packet's fields.

    `source` is the frame's Ethernet source: a request whose client MAC is not the sender's
    own (one phone naming thousands of made-up MACs) names nobody.
    """
    if len(chaddr) < 6:
        return None
    mac = normalize_mac(":".join(f"{b:02x}" for b in chaddr[:6]))
    if source is not None and normalize_mac(source) != mac:
        return None
    found: dict[str, Any] = {}
    for opt in options:
        if isinstance(opt, tuple) and len(opt) >= 2:
            found[str(opt[0])] = opt[1]
    if found.get("message-type") not in (1, 3):  # discover, request
        return None
    hostname = _text(found.get("hostname"))
    vendor = _text(found.get("vendor_class_id"))
    if hostname is None and vendor is None:
        return None
    return DhcpSighting(mac, hostname, vendor)


class DhcpSniffer:
    """Runs scapy's AsyncSniffer on the LAN and hands each sighting to a callback."""

    def __init__(self, interface: str, on_sighting: Callable[[DhcpSighting], None]) -> None:
        self._interface = interface
        self._on_sighting = on_sighting
        self._sniffer: Any = None

    def _packet(self, packet: Any) -> None:
        from scapy.layers.dhcp import BOOTP, DHCP
        from scapy.layers.l2 import Ether

        if BOOTP not in packet or DHCP not in packet or Ether not in packet:
            return
        try:
            sighting = sighting_from_options(
                bytes(packet[BOOTP].chaddr), list(packet[DHCP].options), str(packet[Ether].src)
            )
        except ValueError:
            return
        if sighting is not None:
            self._on_sighting(sighting)

    def start(self) -> bool:
        """Start sniffing; False (logged once) when the kernel or permissions say no."""
        try:
            # Ask the kernel first: AsyncSniffer would only fail later, inside its thread.
            with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as probe:
                probe.bind((self._interface, 0))
            from scapy.sendrecv import AsyncSniffer

            self._sniffer = AsyncSniffer(
                iface=self._interface,
                filter="udp and (port 67 or port 68)",
                prn=self._packet,
                store=False,
            )
            self._sniffer.start()
        except (PermissionError, OSError) as exc:
            log.warning("no DHCP names: cannot sniff on %s (%s)", self._interface, exc)
            self._sniffer = None
            return False
        return True

    def stop(self) -> None:
        if self._sniffer is not None:
            try:
                self._sniffer.stop()
            except Exception:  # a sniffer that died on its own has nothing left to stop
                log.debug("DHCP sniffer was already stopped", exc_info=True)
            self._sniffer = None
