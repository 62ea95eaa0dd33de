"""Reconcile: make the kernel hold what the database says, touching only the difference.

`plan()` is pure set arithmetic over desired and actual state (no I/O), so it is unit-tested
without a kernel; `apply_plan()` hands the result to the adapters; `reconcile()` does both and
is what runs at start, after each change and on a timer. Planning against the state that
applying a plan produces yields an empty plan: a second reconcile changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from hotspotd.core.ports import (
    DeviceKey,
    Firewall,
    FirewallChange,
    FirewallState,
    Rate,
    Shaper,
    ShaperChange,
)


@dataclass(frozen=True)
class Desired:
    """What the database says the kernel should hold."""

    authorized: Mapping[DeviceKey, Rate] = field(default_factory=dict)
    trusted: frozenset[str] = frozenset()
    blocked: frozenset[str] = frozenset()
    garden: frozenset[IPv4Address] = frozenset()


@dataclass(frozen=True)
class Plan:
    firewall: FirewallChange = field(default_factory=FirewallChange)
    shaper: ShaperChange = field(default_factory=ShaperChange)

    def is_empty(self) -> bool:
        return self.firewall.is_empty() and self.shaper.is_empty()


def desired_rates(authorized: Mapping[DeviceKey, Rate]) -> dict[IPv4Address, Rate]:
    """The shaping each address should have.

    A rate of None both ways means "up to the uplink", which needs no class at all. Should two
    keys share an address (a lease handed on), the first key in sort order decides.
    """
    rates: dict[IPv4Address, Rate] = {}
    for key in sorted(authorized, reverse=True):
        rate = authorized[key]
        if rate.down_bps is None and rate.up_bps is None:
            rates.pop(key.ip, None)
        else:
            rates[key.ip] = rate
    return rates


def same_rate(a: Rate, b: Rate) -> bool:
    """Equal as the kernel can hold them: HTB stores bytes per second, so bit/s within 8."""
    return _same_bps(a.down_bps, b.down_bps) and _same_bps(a.up_bps, b.up_bps)


def _same_bps(a: int | None, b: int | None) -> bool:
    if a is None or b is None:
        return a is b
    return a // 8 == b // 8


def plan(desired: Desired, firewall: FirewallState, shaper: Mapping[IPv4Address, Rate]) -> Plan:
    """The changes that turn `firewall` and `shaper` (as read from the kernel) into `desired`."""
    wanted = frozenset(desired.authorized)
    fw = FirewallChange(
        authorize=wanted - firewall.authorized,
        deauthorize=firewall.authorized - wanted,
        trust=desired.trusted - firewall.trusted,
        untrust=firewall.trusted - desired.trusted,
        block=desired.blocked - firewall.blocked,
        unblock=firewall.blocked - desired.blocked,
        garden_add=desired.garden - firewall.garden,
        garden_remove=firewall.garden - desired.garden,
    )
    rates = desired_rates(desired.authorized)
    changed = {
        ip: rate
        for ip, rate in rates.items()
        if ip not in shaper or not same_rate(rate, shaper[ip])
    }
    return Plan(fw, ShaperChange(set=changed, remove=frozenset(shaper.keys() - rates.keys())))


def apply_plan(firewall: Firewall, shaper: Shaper, plan: Plan) -> None:
    """Shape before opening the door, close the door before unshaping.

    A newly authorized device's first packets are then already in its class, and a removed
    one never has a moment of unshaped access.
    """
    if plan.shaper.set:
        shaper.apply(ShaperChange(set=plan.shaper.set))
    if not plan.firewall.is_empty():
        firewall.apply(plan.firewall)
    if plan.shaper.remove:
        shaper.apply(ShaperChange(remove=plan.shaper.remove))


def reconcile(firewall: Firewall, shaper: Shaper, desired: Desired) -> Plan:
    """Read the kernel, apply only the difference, and return what was changed."""
    todo = plan(desired, firewall.state(), shaper.state())
    if not todo.is_empty():
        apply_plan(firewall, shaper, todo)
    return todo
