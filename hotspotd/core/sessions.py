"""Sessions: what every part of a session's life shares, and the operator's changes to one.

The end causes, the free daily allowance (`FreePolicy`, and what a device used of it today),
the refusals with their stable `reason` codes, finding a device and ending a session; what a
logged-in device has left (`status`); extending a voucher and trusting or blocking a device.
Logging in is `core.login`, charging counters `core.metering`, ending what ran out
`core.enforcement`, what the kernel should hold `core.desired`. The caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from ipaddress import IPv4Address
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session as DB

from hotspotd.core import accounting, audit, queries, vouchers
from hotspotd.core.accounting import Allowance
from hotspotd.core.models import Device, Session, SessionKind, Voucher, VoucherState
from hotspotd.core.ports import normalize_mac
from hotspotd.errors import ClientError, Conflict, InvalidInput, NotFound

if TYPE_CHECKING:  # only for the type: the core does not load the configuration itself
    from hotspotd.config import FreeAllowanceConfig


class Forbidden(ClientError):
    status = 403
    code = "forbidden"
    reason = "forbidden"


class NotLoggedIn(NotFound):
    """The device asks for something that needs a session, and has none."""

    reason = "not_logged_in"


class WiderCard(Conflict):
    """The card has no limit where the voucher in use has one: adding it would add nothing
    there (an unlimited-data card onto a 1 GB one). Log in with it instead."""

    reason = "wider_card"


class EndCause:
    """Why a session ended, beyond the accounting reasons."""

    LOGOUT = "logout"
    KICKED = "kicked"
    REPLACED = "replaced"  # another device took its place on the voucher
    SWITCHED = "switched"  # the device logged in with another voucher
    REVOKED = "revoked"
    BLOCKED = "blocked"
    LEASE = "lease"  # its address went to another device
    FREE_OFF = "free_off"  # the operator switched the free allowance off
    DAY_END = "day_end"  # a free session at midnight: it goes on as the new day's session
    LEFT = "left"  # its phone no longer answers on the LAN: it went away without logging out


@dataclass(frozen=True)
class FreePolicy:
    """The free daily allowance per device, as the village configured it."""

    enabled: bool = False
    time_s: int | None = None
    data_bytes: int | None = None
    down_bps: int | None = None
    up_bps: int | None = None

    @classmethod
    def from_config(cls, free: FreeAllowanceConfig) -> FreePolicy:
        """The policy the configuration's `[free]` table sets."""
        return cls(free.enabled, free.time_s, free.data_bytes, free.down_bps, free.up_bps)


def device_for(db: DB, mac: str, now: datetime) -> Device:
    mac = normalize_mac(mac)
    device = db.scalar(select(Device).where(Device.mac == mac))
    if device is None:
        device = Device(mac=mac, first_seen_at=now, last_seen_at=now)
        db.add(device)
        db.flush()
    else:
        device.last_seen_at = now
    return device


def end(db: DB, session: Session, now: datetime, reason: str) -> None:
    if session.ended_at is None:
        session.ended_at = now
        session.end_reason = reason


def day_start(now: datetime, tz: ZoneInfo) -> datetime:
    """Midnight of `now`'s day in the village's time zone."""
    local = now.astimezone(tz)
    return datetime.combine(local.date(), time(0), tzinfo=tz)


def free_usage_today(db: DB, device: Device, now: datetime, tz: ZoneInfo) -> accounting.Usage:
    return free_usage_today_of(db, [device.id], now, tz)[device.id]


def free_usage_today_of(
    db: DB, device_ids: Iterable[int], now: datetime, tz: ZoneInfo
) -> dict[int, accounting.Usage]:
    """What each device used of today's free allowance, in one query for them all (the
    poll asks for every free device online at once, not one query each)."""
    since = day_start(now, tz)
    ids = sorted(set(device_ids))
    used = {device_id: accounting.Usage(since) for device_id in ids}
    for i in range(0, len(ids), 500):  # bound parameters per statement, as any database takes
        rows = db.execute(
            select(
                Session.device_id,
                func.coalesce(func.sum(Session.seconds), 0),
                func.coalesce(func.sum(Session.bytes_up), 0),
                func.coalesce(func.sum(Session.bytes_down), 0),
            )
            .where(
                Session.kind == SessionKind.FREE,
                Session.device_id.in_(ids[i : i + 500]),
                Session.started_at >= since,
            )
            .group_by(Session.device_id)
        )
        for device_id, seconds, up, down in rows:
            used[device_id] = accounting.Usage(since, int(seconds), int(up) + int(down))
    return used


def free_allowance(policy: FreePolicy) -> Allowance:
    return Allowance(time_s=policy.time_s, data_bytes=policy.data_bytes)


@dataclass(frozen=True)
class Status:
    session: Session
    plan: str
    seconds_left: int | None
    data_left: int | None
    valid_until: datetime | None
    devices: int  # devices logged in on the same voucher


def status(
    db: DB,
    *,
    ip: IPv4Address,
    now: datetime,
    policy: FreePolicy,
    tz: ZoneInfo,
    mac: str | None = None,
) -> Status:
    s = queries.open_session_at(db, ip, mac)
    if s is None:
        raise NotFound("this device is not logged in", reason="not_logged_in")
    if s.voucher is not None:
        st = vouchers.standing_of(s.voucher, now)
        on = queries.devices_on_voucher(db, s.voucher_id)
        return Status(
            s, s.voucher.plan.name, st.seconds_left, st.data_left, st.valid_until, on or 1
        )
    allowance = free_allowance(policy)
    usage = free_usage_today(db, s.device, now, tz)
    return Status(
        s,
        "free",
        accounting.time_allowance_left(allowance, usage),
        accounting.data_left(allowance, usage),
        day_start(now, tz) + timedelta(days=1),
        1,
    )


def extend(
    db: DB, *, code: str, seconds: int, data_bytes: int, actor: str, now: datetime
) -> Voucher:
    """Give a voucher more time (also moving its validity) and/or data."""
    if seconds < 0 or data_bytes < 0 or (seconds == 0 and data_bytes == 0):
        raise InvalidInput("extend by a positive time and/or data amount", reason="nothing_to_add")
    voucher = vouchers.find(db, code)
    if voucher.state is VoucherState.REVOKED:
        raise Conflict("that voucher is revoked", reason="revoked")
    voucher.extra_seconds += seconds
    voucher.extra_bytes += data_bytes
    if voucher.state in (VoucherState.EXPIRED, VoucherState.USED_UP):
        voucher.state = VoucherState.ACTIVE if voucher.first_used_at else VoucherState.UNUSED
        voucher.ended_at = None
    audit.record(db, now, actor, "voucher.extend", voucher.code, f"+{seconds}s +{data_bytes}B")
    return voucher


def set_flag(
    db: DB,
    *,
    mac: str,
    flag: str,
    value: bool,
    actor: str,
    now: datetime,
    note: str | None = None,
) -> Device:
    """Trust, untrust, block or unblock a device by MAC; blocking ends its sessions. A `note`
    (whose till this is, why it is blocked) replaces the device's note; "" clears it."""
    if flag not in ("trusted", "blocked"):
        raise InvalidInput(f"unknown device flag {flag!r}", reason="unknown_flag")
    device = device_for(db, mac, now)
    setattr(device, flag, value)
    if note is not None:
        device.note = " ".join(note.split())[:200] or None
    if flag == "blocked" and value:
        for s in queries.open_of_device(db, device.mac):
            end(db, s, now, EndCause.BLOCKED)
    verb = {"trusted": ("trust", "untrust"), "blocked": ("block", "unblock")}[flag]
    audit.record(db, now, actor, f"device.{verb[0] if value else verb[1]}", device.mac,
                 device.note or "" if note is not None else "")  # fmt: skip
    return device
