"""Desired state: what the kernel should hold, worked out from the database alone.

Authorized devices with their rates, trusted and blocked MACs, the walled garden; reconcile
(`core.reconcile`) makes the kernel match it.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address

from sqlalchemy import select
from sqlalchemy.orm import Session as DB

from hotspotd.core import queries
from hotspotd.core.models import Device
from hotspotd.core.ports import DeviceKey, Rate
from hotspotd.core.reconcile import Desired
from hotspotd.core.sessions import FreePolicy


def state(db: DB, *, garden: Iterable[IPv4Address], policy: FreePolicy) -> Desired:
    """What the kernel should hold, from the database alone."""
    devices = db.scalars(select(Device).where(Device.trusted | Device.blocked)).all()
    blocked = frozenset(d.mac for d in devices if d.blocked)
    trusted = frozenset(d.mac for d in devices if d.trusted and not d.blocked)
    authorized: dict[DeviceKey, Rate] = {}
    for s in queries.open_sessions(db, with_details=True):  # the plans too, not a load each
        if s.mac in blocked:
            continue
        if s.voucher is not None:
            rate = Rate(s.voucher.plan.down_bps, s.voucher.plan.up_bps)
        else:
            rate = Rate(policy.down_bps, policy.up_bps)
        authorized[DeviceKey(IPv4Address(s.ip), s.mac)] = rate
    return Desired(
        authorized=authorized, trusted=trusted, blocked=blocked, garden=frozenset(garden)
    )
