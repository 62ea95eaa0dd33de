"""Roll-ups: samples into UTC hours, hours into the village's local days, then pruning."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session as DB

from hotspotd.core import usage
from hotspotd.core.models import Device, Session, SessionKind, UsageDay, UsageHour, UsageSample

JKT = ZoneInfo("Asia/Jakarta")
T0 = datetime(2026, 11, 22, 16, 0, tzinfo=UTC)  # 23:00 in Jakarta


def _session(db: DB, mac: str) -> Session:
    device = Device(mac=mac, first_seen_at=T0, last_seen_at=T0)
    s = Session(
        kind=SessionKind.FREE,
        device=device,
        ip="10.66.0.5",
        mac=mac,
        started_at=T0,
        last_activity_at=T0,
    )
    db.add(s)
    db.flush()
    return s


def _sample(db: DB, s: Session, at: datetime, up: int, down: int) -> None:
    db.add(UsageSample(session_id=s.id, taken_at=at, seconds=10, bytes_up=up, bytes_down=down))


def test_hours_then_local_days_then_prune(db: DB) -> None:
    a, b = _session(db, "02:00:00:00:00:01"), _session(db, "02:00:00:00:00:02")
    _sample(db, a, T0 + timedelta(minutes=5), 100, 1000)  # 23:05 local, day 22
    _sample(db, b, T0 + timedelta(minutes=50), 10, 10)  # 23:50 local, day 22
    _sample(db, a, T0 + timedelta(hours=1, minutes=1), 1, 2)  # 00:01 local, day 23
    db.flush()

    # before the hour is over nothing is written
    assert usage.rollup_hours(db, T0 + timedelta(minutes=59)) == 0
    assert usage.rollup_hours(db, T0 + timedelta(hours=2)) == 2
    assert usage.rollup_hours(db, T0 + timedelta(hours=2)) == 0  # idempotent
    first = db.scalars(select(UsageHour).order_by(UsageHour.hour)).first()
    assert first is not None
    assert (first.hour, first.sessions, first.devices, first.bytes_up, first.bytes_down) == (
        T0,
        2,
        2,
        110,
        1010,
    )
    assert first.online_seconds == 20

    # local day 22 is over at 17:00 UTC; day 23 is not yet
    assert usage.rollup_days(db, T0 + timedelta(hours=2), JKT) == 1
    day = db.scalars(select(UsageDay)).one()
    assert (day.day, day.devices, day.bytes_up, day.bytes_down) == (
        date(2026, 11, 22),
        2,
        110,
        1010,
    )
    assert usage.rollup_days(db, T0 + timedelta(hours=2), JKT) == 0

    # samples are kept three days, and only once rolled up
    assert usage.prune_samples(db, T0 + timedelta(days=1)) == 0
    assert usage.prune_samples(db, T0 + timedelta(days=5)) == 3
    assert db.scalar(select(func.count()).select_from(UsageSample)) == 0


def test_the_years_last_night_in_papua_is_new_years_day_there(db: DB) -> None:
    """Asia/Jayapura is UTC+9: 15:30 UTC on 31 December is already 1 January there."""
    wit = ZoneInfo("Asia/Jayapura")
    eve = datetime(2026, 12, 31, 14, 30, tzinfo=UTC)  # 23:30 WIT, 31 Dec
    s = _session(db, "02:00:00:00:00:03")
    _sample(db, s, eve, 1, 10)
    _sample(db, s, eve + timedelta(hours=1), 2, 20)  # 00:30 WIT, 1 Jan 2027
    db.flush()
    later = eve + timedelta(days=1, hours=2)
    assert usage.rollup_hours(db, later) == 2
    assert usage.rollup_days(db, later, wit) == 2
    days = {d.day: d.bytes_down for d in db.scalars(select(UsageDay))}
    assert days == {date(2026, 12, 31): 10, date(2027, 1, 1): 20}


def test_samples_of_a_span_on_provisional_time_are_kept_until_it_is_moved(db: DB) -> None:
    s = _session(db, "02:00:00:00:00:04")
    _sample(db, s, T0, 1, 1)
    db.flush()
    usage.rollup_hours(db, T0 + timedelta(hours=2))
    assert usage.prune_samples(db, T0 + timedelta(days=5), keep_since=T0) == 0
    assert usage.prune_samples(db, T0 + timedelta(days=5)) == 1
