"""Usage roll-ups: raw poll samples into hours, hours into the village's days.

Grouping is done in Python rather than with each database's own date functions, so SQLite and
PostgreSQL give the same answers. Samples are kept a few days after they are rolled up, then
pruned; hours and days are kept for the reports.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session as DB

from hotspotd.core.models import Session, UsageDay, UsageHour, UsageSample

KEEP_SAMPLES = timedelta(days=3)


def hour_floor(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


@dataclass
class _Bucket:
    sessions: set[int] = field(default_factory=set)
    devices: set[int] = field(default_factory=set)
    seconds: int = 0
    up: int = 0
    down: int = 0


def rollup_hours(db: DB, now: datetime) -> int:
    """Roll every complete hour that has samples and no row yet; returns hours written."""
    end = hour_floor(now)
    last = db.scalar(select(func.max(UsageHour.hour)))
    start = last + timedelta(hours=1) if last is not None else None
    stmt = (
        select(UsageSample, Session.device_id)
        .join(Session, Session.id == UsageSample.session_id)
        .where(UsageSample.taken_at < end)
    )
    if start is not None:
        stmt = stmt.where(UsageSample.taken_at >= start)
    buckets: dict[datetime, _Bucket] = defaultdict(_Bucket)
    for sample, device_id in db.execute(stmt):
        b = buckets[hour_floor(sample.taken_at)]
        b.sessions.add(sample.session_id)
        b.devices.add(device_id)
        b.seconds += sample.seconds
        b.up += sample.bytes_up
        b.down += sample.bytes_down
    for hour, b in sorted(buckets.items()):
        db.add(
            UsageHour(
                hour=hour,
                sessions=len(b.sessions),
                devices=len(b.devices),
                online_seconds=b.seconds,
                bytes_up=b.up,
                bytes_down=b.down,
            )
        )
    db.flush()
    return len(buckets)


def _local_day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=tz)
    return start, datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)


def rollup_days(db: DB, now: datetime, tz: ZoneInfo) -> int:
    """Roll every complete local day that has hours and no row yet; returns days written."""
    today = now.astimezone(tz).date()
    done = set(db.scalars(select(UsageDay.day)))
    per_day: dict[date, list[UsageHour]] = defaultdict(list)
    for hour in db.scalars(select(UsageHour).order_by(UsageHour.hour)):
        day = hour.hour.astimezone(tz).date()
        if day < today and day not in done:
            per_day[day].append(hour)
    for day, hours in sorted(per_day.items()):
        start, stop = _local_day_bounds(day, tz)
        sessions, devices = db.execute(
            select(
                func.count(func.distinct(UsageSample.session_id)),
                func.count(func.distinct(Session.device_id)),
            )
            .join(Session, Session.id == UsageSample.session_id)
            .where(UsageSample.taken_at >= start, UsageSample.taken_at < stop)
        ).one()
        db.add(
            UsageDay(
                day=day,
                # the samples may already be pruned for old days: then the hours' best figure
                sessions=sessions or max(h.sessions for h in hours),
                devices=devices or max(h.devices for h in hours),
                online_seconds=sum(h.online_seconds for h in hours),
                bytes_up=sum(h.bytes_up for h in hours),
                bytes_down=sum(h.bytes_down for h in hours),
            )
        )
    db.flush()
    return len(per_day)


def prune_samples(db: DB, now: datetime, *, keep_since: datetime | None = None) -> int:
    """Drop samples older than KEEP_SAMPLES whose hour is already rolled up.

    Samples from `keep_since` on (a span stamped while the clock was not set) are kept whatever
    their age: once the clock is set they are moved and their hours are rolled up again.
    """
    last = db.scalar(select(func.max(UsageHour.hour)))
    if last is None:
        return 0
    cutoff = min(now - KEEP_SAMPLES, last + timedelta(hours=1))
    if keep_since is not None:
        cutoff = min(cutoff, keep_since)
    result = db.execute(delete(UsageSample).where(UsageSample.taken_at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
