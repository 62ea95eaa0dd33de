"""Enforcement: ending the sessions that must end now, and writing down vouchers that ran out.

Time, data and idle limits always; validity only on a clock that can be trusted (`CLOCK_FLOOR`,
and the provisional span of `core.timeline`). Free sessions are split at the village's midnight
first, so each day's free use is counted on that day. The caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session as DB

from hotspotd.core import accounting, queries, vouchers
from hotspotd.core.models import Session, SessionKind, Voucher, VoucherState
from hotspotd.core.sessions import (
    EndCause,
    FreePolicy,
    day_start,
    end,
    free_allowance,
    free_usage_today_of,
)

# Before this the clock is surely wrong (a router without a real-time clock boots in 1970, or
# at the time fake-hwclock saved): validity is not judged until NTP has set it.
CLOCK_FLOOR = datetime(2025, 1, 1, tzinfo=UTC)


def clock_trusted(now: datetime) -> bool:
    return now >= CLOCK_FLOOR


def split_at_midnight(
    db: DB, now: datetime, tz: ZoneInfo, online: Sequence[Session] | None = None
) -> list[Session]:
    """Free sessions opened before today's midnight go on as sessions of today.

    The free allowance is per day, counted over the sessions of that day: without this, a
    session opened at 23:50 would count as none of today's use and never end. The old one ends
    at midnight (reason `day_end`), the new one starts there with the same address, MAC and
    kernel counters, so the phone stays online and the kernel sees no change.
    """
    midnight = day_start(now, tz)
    fresh = []
    for old in queries.open_sessions(db) if online is None else online:
        if old.kind is not SessionKind.FREE or old.started_at >= midnight:
            continue
        end(db, old, midnight, EndCause.DAY_END)
        db.flush()  # one open session per address at a time
        new = Session(
            kind=SessionKind.FREE,
            device=old.device,
            ip=old.ip,
            mac=old.mac,
            started_at=midnight,
            last_activity_at=max(old.last_activity_at, midnight),
            kernel_up=old.kernel_up,
            kernel_down=old.kernel_down,
        )
        db.add(new)
        fresh.append(new)
    db.flush()
    return fresh


def open_after_midnight(db: DB, now: datetime, tz: ZoneInfo) -> list[Session]:
    """The open sessions with their device, voucher and plan, free ones split at midnight
    first (`split_at_midnight`): one query for the poll and enforcement, not one each."""
    online = queries.open_sessions(db, with_details=True)
    fresh = split_at_midnight(db, now, tz, online)
    return [s for s in online if s.ended_at is None] + fresh  # by id, as the query orders


def enforce(
    db: DB,
    now: datetime,
    *,
    policy: FreePolicy,
    tz: ZoneInfo,
    provisional_since: datetime | None = None,
) -> list[tuple[Session, str]]:
    """End every session that must end now, and write down vouchers that ran out.

    `provisional_since`: the clock is not set, and times from then on are provisional (see
    `core.timeline`). Validity is then judged only for cards first used inside that span,
    whose validity is measured on the same provisional time; time and data always are.
    """
    online = open_after_midnight(db, now, tz)
    floor_ok = clock_trusted(now)

    def trusted(first_used_at: datetime | None) -> bool:
        if not floor_ok:
            return False
        return provisional_since is None or (
            first_used_at is not None and first_used_at >= provisional_since
        )

    # Today's free use of every free device in one query: never a query per session.
    free_used = free_usage_today_of(
        db, (s.device_id for s in online if s.kind is SessionKind.FREE), now, tz
    )
    ended: list[tuple[Session, str]] = []
    for s in online:
        reason: str | None
        if s.device.blocked:
            reason = EndCause.BLOCKED
        elif s.voucher is not None:
            v = s.voucher
            if v.state is VoucherState.REVOKED:
                reason = EndCause.REVOKED
            else:
                why = accounting.end_reason(
                    vouchers.allowance_of(v),
                    vouchers.usage_of(v),
                    now,
                    last_activity_at=s.last_activity_at,
                    clock_trusted=trusted(v.first_used_at),
                )
                reason = why.value if why is not None else None
        elif not policy.enabled:
            reason = EndCause.FREE_OFF
        else:
            why = accounting.end_reason(free_allowance(policy), free_used[s.device_id], now)
            reason = why.value if why is not None else None
        if reason is not None:
            end(db, s, now, reason)
            ended.append((s, reason))
    _settle_vouchers(db, now, trusted)
    return ended


def _settle_vouchers(db: DB, now: datetime, trusted: Callable[[datetime | None], bool]) -> None:
    for v in db.scalars(select(Voucher).where(Voucher.state == VoucherState.ACTIVE)):
        state = vouchers.state_now(v, now, clock_trusted=trusted(v.first_used_at))
        if state is not VoucherState.ACTIVE:
            v.state = state
            v.ended_at = now
