"""The kernel as the core sees it: two small interfaces, `Firewall` and `Shaper`.

The core declares them; `hotspotd.net` implements them over nftables and tc, and
`tests/fakes.py` in memory. Both take whole changes at once, so an implementation can apply a
reconcile plan in one kernel transaction, and both report what the kernel really holds, so
reconcile can compare desired with actual.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Protocol

_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def normalize_mac(mac: str) -> str:
    """Lower-case, colon-separated; raises ValueError for anything that is not a MAC."""
    text = mac.strip().lower().replace("-", ":")
    if not _MAC.match(text):
        raise ValueError(f"not a MAC address: {mac!r}")
    return text


@dataclass(frozen=True, order=True)
class DeviceKey:
    """A device as the firewall knows it: its IPv4 address together with its MAC.

    Keying on both means another host that takes an authorized phone's address with its own
    MAC gets nothing.
    """

    ip: IPv4Address
    mac: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "ip", IPv4Address(self.ip))
        object.__setattr__(self, "mac", normalize_mac(self.mac))


@dataclass(frozen=True)
class Counters:
    """Bytes a device sent (up) and received (down) since the kernel began counting it."""

    bytes_up: int = 0
    bytes_down: int = 0


@dataclass(frozen=True)
class FirewallState:
    """What the firewall holds, or should hold."""

    authorized: frozenset[DeviceKey] = frozenset()
    trusted: frozenset[str] = frozenset()  # MACs that pass without login
    blocked: frozenset[str] = frozenset()  # MACs that get nothing, not even the portal
    garden: frozenset[IPv4Address] = frozenset()  # addresses anyone may reach before login


@dataclass(frozen=True)
class FirewallChange:
    """One batch of firewall edits, applied in a single transaction."""

    authorize: frozenset[DeviceKey] = frozenset()
    deauthorize: frozenset[DeviceKey] = frozenset()
    trust: frozenset[str] = frozenset()
    untrust: frozenset[str] = frozenset()
    block: frozenset[str] = frozenset()
    unblock: frozenset[str] = frozenset()
    garden_add: frozenset[IPv4Address] = frozenset()
    garden_remove: frozenset[IPv4Address] = frozenset()

    def is_empty(self) -> bool:
        return not any(
            (
                self.authorize,
                self.deauthorize,
                self.trust,
                self.untrust,
                self.block,
                self.unblock,
                self.garden_add,
                self.garden_remove,
            )
        )


@dataclass(frozen=True, order=True)
class Rate:
    """A device's shaping: download and upload in bit/s; None means up to the uplink."""

    down_bps: int | None = None
    up_bps: int | None = None


@dataclass(frozen=True)
class ShaperChange:
    """Devices to shape (added or changed to the given rate) and devices to stop shaping."""

    set: Mapping[IPv4Address, Rate] = field(default_factory=dict)
    remove: frozenset[IPv4Address] = frozenset()

    def is_empty(self) -> bool:
        return not self.set and not self.remove


class Firewall(Protocol):
    """Our own nftables table: authorized devices, trusted and blocked MACs, walled garden."""

    def setup(self) -> None:
        """Create our table if it is missing, in one transaction; touch nobody else's."""

    def teardown(self) -> None:
        """Remove our table (on purpose only: a restart must leave it in place)."""

    def state(self) -> FirewallState:
        """What the kernel holds now."""

    def apply(self, change: FirewallChange) -> None:
        """Apply every edit of `change` in one transaction, or none of them."""

    def counters(self) -> Mapping[DeviceKey, Counters]:
        """Bytes of every authorized device, read in one call."""


class Shaper(Protocol):
    """Per-device bandwidth: HTB on the LAN (download) and on an ifb (upload)."""

    def setup(self, uplink: Rate) -> None:
        """Create the root qdiscs and the parent class at the uplink's capacity, if missing."""

    def teardown(self) -> None:
        """Remove our qdiscs, classes, filters and the ifb device."""

    def state(self) -> Mapping[IPv4Address, Rate]:
        """Shaped devices and their rates as the kernel holds them."""

    def apply(self, change: ShaperChange) -> None:
        """Add, change and remove device classes and filters."""
