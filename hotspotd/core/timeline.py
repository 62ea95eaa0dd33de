"""Times stamped while the router's clock was not set, and moving them once it is.

A board without a real-time clock boots in 1970, or at the time fake-hwclock last saved, and
NTP later jumps the clock. The daemon stamps nothing with such a clock: until the clock is
known to be set it keeps a provisional time that never runs behind anything the database has
seen and advances with the monotonic clock (see `hotspotd.clock.Timekeeper`), so durations
measured inside the unsynced span are exact. When the clock is set, every time stamped from the
start of that span is moved by the difference in one transaction: a card redeemed before the
jump keeps its whole validity, and a session is not ended as idle by the jump.

Pure database work: the caller gives `since` and the difference, and owns the transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.orm import Session as DB

from hotspotd.core.models import Base, ClockState, UsageDay, UsageHour, UTCDateTime
from hotspotd.core.usage import hour_floor

# Roll-ups are rebuilt from the moved samples rather than moved: an hour row moved by 20 h 13 min
# would no longer start on the hour. The clock's own row is the caller's to keep.
_NOT_MOVED = frozenset({UsageHour.__tablename__, UsageDay.__tablename__, "clock_state"})


def state(db: DB) -> ClockState:
    """The clock row, made on first use."""
    row = db.get(ClockState, 1)
    if row is None:
        row = ClockState(id=1, corrections=0)
        db.add(row)
        db.flush()
    return row


def newest_stamp(db: DB) -> datetime | None:
    """The latest time the database holds (the daemon's last heartbeat among them)."""
    found = [
        at
        for table in Base.metadata.sorted_tables
        if table.name not in (UsageHour.__tablename__, UsageDay.__tablename__)
        for column in table.columns
        if isinstance(column.type, UTCDateTime)
        and (at := db.scalar(select(func.max(column)))) is not None
    ]
    return max(found) if found else None


def shift_stamps(db: DB, since: datetime, delta: timedelta, tz: ZoneInfo) -> int:
    """Move every time stamped at or after `since` by `delta`; returns how many were moved.

    Hours and days rolled up from the moved span are dropped, so the next roll-up rebuilds them
    from the moved samples (which `usage.prune_samples` keeps while a span is provisional).
    """
    moved = 0
    for table in Base.metadata.sorted_tables:
        if table.name in _NOT_MOVED:
            continue
        key = next(iter(table.primary_key.columns))
        for column in table.columns:
            if not isinstance(column.type, UTCDateTime):
                continue
            rows = db.execute(select(key, column).where(column >= since)).all()
            if not rows:
                continue
            db.execute(
                update(table)
                .where(key == bindparam("row_key"))
                .values({column.name: bindparam("moved_to")}),
                [{"row_key": k, "moved_to": at + delta} for k, at in rows],
            )
            moved += len(rows)
    # Everything rolled up from the earliest hour the span covers, before or after the move.
    first = hour_floor(min(since, since + delta))
    db.execute(delete(UsageHour).where(UsageHour.hour >= first))
    db.execute(delete(UsageDay).where(UsageDay.day >= first.astimezone(tz).date()))
    db.expire_all()  # objects already loaded must show the moved times
    return moved
