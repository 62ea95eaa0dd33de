"""The MAC behind an IP on the LAN: the kernel's neighbour table first, an ARP probe second.

A login binds a voucher to an IP *and* a MAC, so the MAC must be right: an entry the kernel
has just confirmed (reachable, or set by hand) is taken as it is; a missing, stale or failed
one is asked afresh with a broadcast ARP request (scapy), whose answer comes from the device
that holds the address now. No answer means the device is not there: None.
"""

from __future__ import annotations

import errno
from ipaddress import IPv4Address

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from hotspotd.core.ports import normalize_mac
from hotspotd.errors import AdapterError

NUD_INCOMPLETE = 0x01
NUD_REACHABLE = 0x02
NUD_STALE = 0x04
NUD_DELAY = 0x08
NUD_PROBE = 0x10
NUD_FAILED = 0x20
NUD_NOARP = 0x40
NUD_PERMANENT = 0x80
# Confirmed recently (REACHABLE, DELAY: traffic was seen and is being confirmed) or fixed.
TRUSTED_STATES = NUD_REACHABLE | NUD_DELAY | NUD_PERMANENT | NUD_NOARP


class NeighbourTable:
    """Looks MACs up on one LAN interface."""

    def __init__(self, lan_interface: str, probe_timeout: float = 0.5) -> None:
        self._lan = lan_interface
        self._timeout = probe_timeout

    def mac_of(self, ip: IPv4Address) -> str | None:
        """The device's MAC, or None if nobody answers for the address."""
        entry = self.lookup(ip)
        if entry is not None and entry[1] & TRUSTED_STATES:
            return entry[0]
        answers = self.probe(ip)
        return answers[0] if answers else None

    def present(self, ip: IPv4Address, mac: str) -> bool:
        """Whether the device with this MAC still answers for this address.

        A confirmed entry for the same MAC says yes without a packet; otherwise one ARP
        request (phones answer ARP even with the screen off: the Wi-Fi chip does it).
        """
        mac = normalize_mac(mac)
        entry = self.lookup(ip)
        if entry is not None and entry[1] & TRUSTED_STATES and entry[0] == mac:
            return True
        return mac in self.probe(ip)

    def lookup(self, ip: IPv4Address) -> tuple[str, int] | None:
        """(MAC, NUD state) from the kernel's table, or None when it has no address for ip."""
        with IPRoute() as ipr:
            try:
                index = ipr.link_lookup(ifname=self._lan)[0]
                entries = ipr.get_neighbours(ifindex=index, dst=str(ip))
            except IndexError as exc:
                raise AdapterError(f"no interface {self._lan}") from exc
            except NetlinkError as exc:
                if exc.code == errno.ENOENT:
                    return None
                raise AdapterError(f"neighbour lookup of {ip}: {exc}") from exc
        for entry in entries:
            mac = entry.get_attr("NDA_LLADDR")
            state = int(entry["state"])
            if mac and not state & (NUD_FAILED | NUD_INCOMPLETE):
                return normalize_mac(mac), state
        return None

    def probe(self, ip: IPv4Address) -> list[str]:
        """Every MAC that answers a broadcast ARP request for ip, first answer first.

        More than one answer means two hosts claim the address.
        """
        from scapy.layers.l2 import ARP, Ether
        from scapy.sendrecv import srp

        # Every field explicit: scapy's defaults come from the interfaces of the namespace it
        # was first imported in, which need not be this one.
        own_mac, own_ip = self._own_addresses()
        request = Ether(src=own_mac, dst="ff:ff:ff:ff:ff:ff") / ARP(
            op="who-has",
            hwsrc=own_mac,
            # Without an address of our own, an RFC 5227 probe (sender 0.0.0.0) still gets replies.
            psrc=str(own_ip or IPv4Address(0)),
            hwdst="00:00:00:00:00:00",
            pdst=str(ip),
        )
        try:
            answered, _ = srp(
                request, iface=self._lan, timeout=self._timeout, multi=True, verbose=False
            )
        except (OSError, ValueError) as exc:
            raise AdapterError(f"ARP probe on {self._lan}: {exc}") from exc
        macs: list[str] = []
        for _, reply in answered:
            if reply.haslayer(ARP) and reply[ARP].op == 2 and reply[ARP].psrc == str(ip):
                mac = normalize_mac(reply[ARP].hwsrc)
                if mac not in macs:
                    macs.append(mac)
        return macs

    def _own_addresses(self) -> tuple[str, IPv4Address | None]:
        """The LAN interface's MAC and first IPv4 address (None if it has none)."""
        with IPRoute() as ipr:
            index = ipr.link_lookup(ifname=self._lan)
            if not index:
                raise AdapterError(f"no interface {self._lan}")
            mac = ipr.get_links(index[0])[0].get_attr("IFLA_ADDRESS")
            for addr in ipr.get_addr(family=2, index=index[0]):
                value = addr.get_attr("IFA_ADDRESS")
                if value:
                    return str(mac), IPv4Address(value)
        return str(mac), None
