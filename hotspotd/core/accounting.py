"""Session accounting as pure functions: no I/O, no clock of its own.

Everything takes the plan's allowance, what the voucher has used so far and `now`, and says
how much is left and whether (and why) a session must end. The daemon, the portal and the CLI
all ask here, so they can never disagree.

Time is the voucher's *online* time: seconds during which at least one of its devices was
logged in, counted by the daemon (`accrue`). Validity is wall-clock time from first use; it is
only judged when the clock is trusted, since a router without a real-time clock may boot in 1970
until NTP answers.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from hotspotd.core.models import VoucherState


class EndReason(enum.StrEnum):
    VALIDITY = "validity"  # the validity period from first use is over
    TIME = "time"  # the online time allowance is used up
    DATA = "data"  # the data allowance is used up
    IDLE = "idle"  # the session saw no traffic for the plan's idle timeout


@dataclass(frozen=True)
class Allowance:
    """A plan's limits; None means no limit."""

    validity_s: int | None = None
    time_s: int | None = None
    data_bytes: int | None = None
    idle_s: int | None = None


@dataclass(frozen=True)
class Usage:
    """What a voucher has used: when it was first used, online seconds, bytes both ways."""

    first_used_at: datetime | None = None
    used_seconds: int = 0
    used_bytes: int = 0


@dataclass(frozen=True)
class Standing:
    """Where a voucher stands at one moment."""

    seconds_left: int | None  # the sooner of time allowance and validity; None: unlimited
    data_left: int | None  # bytes; None: unlimited
    valid_until: datetime | None  # None: not started yet, or no validity limit
    end_reason: EndReason | None  # why it can no longer be used, if it cannot


def valid_until(allowance: Allowance, usage: Usage) -> datetime | None:
    if allowance.validity_s is None or usage.first_used_at is None:
        return None
    return usage.first_used_at + timedelta(seconds=allowance.validity_s)


def time_allowance_left(allowance: Allowance, usage: Usage) -> int | None:
    if allowance.time_s is None:
        return None
    return max(0, allowance.time_s - usage.used_seconds)


def data_left(allowance: Allowance, usage: Usage) -> int | None:
    if allowance.data_bytes is None:
        return None
    return max(0, allowance.data_bytes - usage.used_bytes)


def seconds_left(
    allowance: Allowance, usage: Usage, now: datetime, *, clock_trusted: bool = True
) -> int | None:
    """Seconds of internet left: the online allowance, capped by the end of validity."""
    candidates = []
    online = time_allowance_left(allowance, usage)
    if online is not None:
        candidates.append(online)
    until = valid_until(allowance, usage)
    if until is not None and clock_trusted:
        candidates.append(max(0, int((until - now).total_seconds())))
    elif allowance.validity_s is not None and usage.first_used_at is None:
        candidates.append(allowance.validity_s)
    return min(candidates) if candidates else None


def end_reason(
    allowance: Allowance,
    usage: Usage,
    now: datetime,
    *,
    last_activity_at: datetime | None = None,
    clock_trusted: bool = True,
) -> EndReason | None:
    """Why a session on this voucher must end now, or None if it may go on.

    With several reasons at once the first of validity, time, data, idle is given: it is the
    one a resident can do least about, so it is the most useful to show.
    """
    until = valid_until(allowance, usage)
    if until is not None and clock_trusted and now >= until:
        return EndReason.VALIDITY
    online = time_allowance_left(allowance, usage)
    if online is not None and online <= 0:
        return EndReason.TIME
    data = data_left(allowance, usage)
    if data is not None and data <= 0:
        return EndReason.DATA
    if (
        allowance.idle_s is not None
        and last_activity_at is not None
        and (now - last_activity_at).total_seconds() >= allowance.idle_s
    ):
        return EndReason.IDLE
    return None


def standing(
    allowance: Allowance, usage: Usage, now: datetime, *, clock_trusted: bool = True
) -> Standing:
    return Standing(
        seconds_left=seconds_left(allowance, usage, now, clock_trusted=clock_trusted),
        data_left=data_left(allowance, usage),
        valid_until=valid_until(allowance, usage),
        end_reason=end_reason(allowance, usage, now, clock_trusted=clock_trusted),
    )


def start(usage: Usage, now: datetime) -> Usage:
    """First use starts the validity clock; later uses leave it where it is."""
    if usage.first_used_at is not None:
        return usage
    return Usage(now, usage.used_seconds, usage.used_bytes)


def accrue(usage: Usage, *, seconds: int, bytes_used: int) -> Usage:
    """Add one poll's online seconds and bytes. Negative amounts are refused, never absorbed."""
    if seconds < 0 or bytes_used < 0:
        raise ValueError("usage only grows: seconds and bytes must not be negative")
    return Usage(usage.first_used_at, usage.used_seconds + seconds, usage.used_bytes + bytes_used)


def voucher_state(
    stored: VoucherState,
    allowance: Allowance,
    usage: Usage,
    now: datetime,
    *,
    clock_trusted: bool = True,
) -> VoucherState:
    """The state a voucher is really in now, even if the daemon has not yet written it down."""
    if stored is not VoucherState.ACTIVE:
        return stored
    reason = end_reason(allowance, usage, now, clock_trusted=clock_trusted)
    if reason is EndReason.VALIDITY:
        return VoucherState.EXPIRED
    if reason in (EndReason.TIME, EndReason.DATA):
        return VoucherState.USED_UP
    return VoucherState.ACTIVE
