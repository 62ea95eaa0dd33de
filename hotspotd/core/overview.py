"""The village's day at a glance, for the operator's dashboard: who is online, what today sold.

Today is the village's local day (sessions are split at its midnight, so a session belongs to
one day). Sales are vouchers first used today, at the price printed on their card.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session as DB

from hotspotd.core import queries
from hotspotd.core.models import Session, SessionKind, Voucher


@dataclass(frozen=True)
class Today:
    online: int  # devices with an open session now
    sessions: int  # sessions started today
    devices: int  # devices that were online today
    bytes: int  # up and down, of today's sessions
    vouchers_used: int  # vouchers first used today
    sales_rp: int  # their price, in whole Rupiah
    free_devices: int  # devices on the free allowance today


def day_bounds(now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The start and end of the village's local day around `now`."""
    start = datetime.combine(now.astimezone(tz).date(), time(0), tzinfo=tz)
    return start, datetime.combine(start.date() + timedelta(days=1), time(0), tzinfo=tz)


def today(db: DB, now: datetime, tz: ZoneInfo) -> Today:
    start, end = day_bounds(now, tz)
    in_day = (Session.started_at >= start, Session.started_at < end)
    sessions, devices, moved = db.execute(
        select(
            func.count(Session.id),
            func.count(func.distinct(Session.device_id)),
            func.coalesce(func.sum(Session.bytes_up + Session.bytes_down), 0),
        ).where(*in_day)
    ).one()
    used, sales = db.execute(
        select(func.count(Voucher.id), func.coalesce(func.sum(Voucher.price_rp), 0)).where(
            Voucher.first_used_at >= start, Voucher.first_used_at < end
        )
    ).one()
    free = db.scalar(
        select(func.count(func.distinct(Session.device_id))).where(
            *in_day, Session.kind == SessionKind.FREE
        )
    )
    return Today(
        online=queries.count_open(db),
        sessions=sessions,
        devices=devices,
        bytes=int(moved),
        vouchers_used=used,
        sales_rp=int(sales),
        free_devices=free or 0,
    )
