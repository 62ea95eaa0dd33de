"""Addresses the hotspot never forwards a phone to, shared by the config and the firewall.

This module owns `PRIVATE_DESTINATIONS` and nothing else; it imports only `ipaddress`, so the
config can check `local_destinations` against it without depending on the kernel adapter.
"""

from __future__ import annotations

from ipaddress import IPv4Network

# Destinations no phone is forwarded to, logged in or not: the operator's and the upstream's
# private networks (the ISP modem's admin page), link-local and the ISP's shared (CGNAT)
# space. Whatever a village must reach there goes in `local_destinations`. Other phones are
# refused by interface (LAN to LAN), whatever their addresses; the router's own addresses are
# input, not forwarding (`lan_local`).
PRIVATE_DESTINATIONS = tuple(
    IPv4Network(net)
    for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10")
)
