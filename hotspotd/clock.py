"""One clock for the whole program: the daemon, the portal and `hotspotctl` take theirs here.

Everything that decides by the time asks a `Clock` that it was handed (the tests hand every
process the same fake one); nothing else under `hotspotd/` or `portal/` reads the wall clock.

A village router often has no real-time clock: it boots in 1970, or at the time fake-hwclock
last saved (hours or days behind), and NTP jumps the clock later. So the daemon does not take
the system clock at its word. Its `Timekeeper` knows whether the clock is set (the kernel's
`adjtimex` status or systemd-timesyncd's flag file, above a sanity floor and not before the
newest time in the database). Until it is, the daemon runs on a provisional time that never
runs behind the newest time the database has seen and advances with the monotonic clock; when
the clock is set, every time stamped meanwhile is moved by the jump (`core.timeline`). The
daemon publishes the difference between its time and the system clock in a small file beside
its socket, so the portal and the CLI (`SystemClock(published=...)`) tell the same time.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session as DB

from hotspotd.core import audit, queries, timeline
from hotspotd.core.enforcement import CLOCK_FLOOR

log = logging.getLogger("hotspotd.clock")

# A change between the wall clock and the monotonic clock larger than this is a jump (a step
# by NTP, `date -s`); NTP's slewing moves them apart by at most half a millisecond a second.
JUMP_S = 2.0
TIMESYNCD_FLAG = Path("/run/systemd/timesync/synchronized")


class Clock(Protocol):
    """What code that decides by the time is handed."""

    def now(self) -> datetime:
        """The time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps (for durations and cache ages)."""
        ...


class OsClock(Clock, Protocol):
    """The machine's own clock, and whether the machine believes it is set."""

    def synced(self) -> bool: ...


class _Timex(ctypes.Structure):
    # struct timex of <sys/timex.h> (Linux, 64-bit and 32-bit longs alike).
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time_sec", ctypes.c_long),
        ("time_usec", ctypes.c_long),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_reserved", ctypes.c_int * 11),
    ]


_TIME_ERROR = 5  # adjtimex's answer while the clock is not synchronized
_STA_UNSYNC = 0x0040


def kernel_synced() -> bool | None:
    """The kernel's own word (an NTP client sets it); None where it cannot be asked."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        tx = _Timex()  # modes 0: only read
        state = libc.adjtimex(ctypes.byref(tx))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != _TIME_ERROR and not tx.status & _STA_UNSYNC


def os_synced(flag: Path = TIMESYNCD_FLAG) -> bool:
    """Whether an NTP client has set the clock since boot (timesyncd's flag, or the kernel)."""
    return flag.exists() or bool(kernel_synced())


class SystemClock:
    """The machine's clock, plus the daemon's published correction where there is one.

    `published` is the daemon's clock file (beside its socket). It is read again when it
    changes, checked at most once a second, so asking the time costs a `stat` at most.
    """

    def __init__(self, published: Path | None = None) -> None:
        self.published = published
        self._offset = timedelta(0)
        self._seen: tuple[int, int] | None = None
        self._checked = -1.0

    def now(self) -> datetime:
        if self.published is not None:
            self._refresh()
        return datetime.now(UTC) + self._offset

    def monotonic(self) -> float:
        return time.monotonic()

    def synced(self) -> bool:
        return os_synced()

    def _refresh(self) -> None:
        mono = time.monotonic()
        if 0 <= mono - self._checked < 1.0:
            return
        self._checked = mono
        assert self.published is not None
        try:
            st = self.published.stat()
        except OSError:
            self._offset, self._seen = timedelta(0), None
            return
        if self._seen == (st.st_mtime_ns, st.st_ino):
            return
        self._seen = (st.st_mtime_ns, st.st_ino)
        report = read_published(self.published)
        self._offset = timedelta(seconds=report.offset_s) if report else timedelta(0)


@dataclass(frozen=True)
class ClockReport:
    """What `hotspotctl status` and the dashboard say of the clock."""

    synced: bool
    since: datetime | None  # synced since, or provisional since
    offset_s: float  # the daemon's time minus the system clock
    corrections: int  # jumps moved over so far

    def as_json(self) -> dict[str, object]:
        return {
            "synced": self.synced,
            "since": self.since.isoformat() if self.since else None,
            "offset_s": self.offset_s,
            "corrections": self.corrections,
        }


def read_published(path: Path) -> ClockReport | None:
    """The daemon's clock file; None if there is none (the daemon is not running)."""
    try:
        raw = json.loads(path.read_text())
        since = datetime.fromisoformat(raw["since"]) if raw.get("since") else None
        return ClockReport(
            bool(raw["synced"]), since, float(raw["offset_s"]), int(raw.get("corrections", 0))
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


@dataclass(frozen=True)
class Correction:
    """A jump the daemon moved its stamps over."""

    delta: timedelta
    moved: int  # how many stamps
    reason: str  # "synced": the clock was set; "step": it jumped while set


class Timekeeper:
    """The daemon's clock: the system clock where it is set, a safe provisional time where not.

    `begin()` at start and `observe()` at every poll, each in the caller's transaction. Between
    them the time is `os + offset`; the offset changes only at a jump, so the daemon's time
    never jumps while the clock is not set, and moves the stamps (`core.timeline`) when it is.
    """

    def __init__(self, os_clock: OsClock, tz: ZoneInfo, publish_to: Path | None = None) -> None:
        self.os = os_clock
        self.tz = tz
        self.publish_to = publish_to
        self.offset = timedelta(0)
        self.unsynced_since: datetime | None = None  # None: the clock is set
        self.synced_at: datetime | None = None
        self.corrections = 0
        self._floor = CLOCK_FLOOR  # the clock is set only at or after this (the newest stamp)
        self._skew: float | None = None  # wall minus monotonic, seconds, at the last look
        self._published: str | None = None

    # -- Clock ------------------------------------------------------------------------------

    def now(self) -> datetime:
        return self.os.now() + self.offset

    def monotonic(self) -> float:
        return self.os.monotonic()

    @property
    def synced(self) -> bool:
        return self.unsynced_since is None

    def report(self) -> ClockReport:
        since = self.synced_at if self.synced else self.unsynced_since
        return ClockReport(self.synced, since, self.offset.total_seconds(), self.corrections)

    # -- the daemon's calls -----------------------------------------------------------------

    def begin(self, db: DB) -> Correction | None:
        """At start: is the clock set? If not, a provisional time above all the database has."""
        row = timeline.state(db)
        wall, skew = self._look()
        newest = timeline.newest_stamp(db)
        self._floor = max(CLOCK_FLOOR, newest) if newest else CLOCK_FLOOR
        self.corrections = row.corrections
        self.synced_at = row.synced_at
        correction = None
        if self._set(wall):
            self.offset = timedelta(0)
            if row.unsynced_since is not None:
                # An earlier start ran on provisional time and lost power before NTP answered.
                # When the power went is unknown; taking it as just now errs on the residents'
                # side: their cards lose nothing, and gain at most the length of the cut.
                delta = wall - (newest or wall)
                correction = self._move(db, row.unsynced_since, delta, "synced")
            if row.unsynced_since is not None or self.synced_at is None:
                self.synced_at = wall
            self.unsynced_since = None
        else:
            self.offset = max(timedelta(0), self._floor - wall)
            self.unsynced_since = row.unsynced_since or wall + self.offset
            log.warning(
                "the clock is not set (system clock %s): running on provisional time from %s "
                "until NTP answers",
                wall.isoformat(timespec="seconds"),
                self.now().isoformat(timespec="seconds"),
            )
        self._skew = skew
        self._keep(db)
        return correction

    def observe(self, db: DB) -> Correction | None:
        """At each poll: follow a jump of the system clock, and notice when it becomes set."""
        wall, skew = self._look()
        jump = 0.0 if self._skew is None else skew - self._skew
        self._skew = skew
        jumped = abs(jump) > JUMP_S
        correction = None
        if self.synced:
            if jumped:
                # A step while set (NTP corrected a drift): idle is counted on the monotonic
                # clock, so the open sessions' last activity moves with it; nothing else does.
                correction = self._step(db, timedelta(seconds=jump))
            if not self._set(wall):
                self.unsynced_since = self.now()
                log.warning("the clock is no longer known to be set: provisional time from now")
        else:
            if jumped:
                self.offset -= timedelta(seconds=jump)  # the daemon's time goes on unbroken
            if self._set(wall):
                delta = -self.offset  # the set clock minus the provisional time
                assert self.unsynced_since is not None
                correction = self._move(db, self.unsynced_since, delta, "synced")
                self.offset = timedelta(0)
                self.unsynced_since = None
                self.synced_at = wall
        self._keep(db)
        return correction

    # -- inside -----------------------------------------------------------------------------

    def _look(self) -> tuple[datetime, float]:
        wall = self.os.now()
        return wall, wall.timestamp() - self.os.monotonic()

    def _set(self, wall: datetime) -> bool:
        return wall >= self._floor and self.os.synced()

    def _move(self, db: DB, since: datetime, delta: timedelta, reason: str) -> Correction:
        moved = 0
        if abs(delta.total_seconds()) > JUMP_S:
            moved = timeline.shift_stamps(db, since, delta, self.tz)
            self.corrections += 1
            self._audit(db, reason, delta, moved, since)
        log.warning(
            "the clock is set now: %d times stamped since %s moved by %s",
            moved,
            since.isoformat(timespec="seconds"),
            _signed(delta),
        )
        return Correction(delta, moved, reason)

    def _step(self, db: DB, delta: timedelta) -> Correction:
        moved = 0
        for s in queries.open_sessions(db):
            s.last_activity_at += delta
            moved += 1
        self.corrections += 1
        self._audit(db, "step", delta, moved, None)
        log.warning("the clock jumped by %s while set; idle timers kept", _signed(delta))
        return Correction(delta, moved, "step")

    def _audit(
        self, db: DB, reason: str, delta: timedelta, moved: int, since: datetime | None
    ) -> None:
        detail = f"{_signed(delta)}, {moved} times moved"
        if since is not None:
            detail += f" (provisional since {since.isoformat(timespec='seconds')})"
        audit.record(db, self.now(), "hotspotd", f"clock.{reason}", "clock", detail)

    def _keep(self, db: DB) -> None:
        row = timeline.state(db)
        row.unsynced_since = self.unsynced_since
        row.synced_at = self.synced_at
        row.heartbeat_at = self.now()
        row.corrections = self.corrections
        self.publish()

    def publish(self) -> None:
        """Write the daemon's view for the portal and the CLI: whole, then renamed into place."""
        if self.publish_to is None:
            return
        text = json.dumps(self.report().as_json())
        if text == self._published:
            return  # unchanged: the readers' cached offset stays right
        temp = self.publish_to.with_name(f".{self.publish_to.name}.{os.getpid()}")
        try:
            self.publish_to.parent.mkdir(parents=True, exist_ok=True)
            temp.write_text(text)
            os.chmod(temp, 0o644)
            os.replace(temp, self.publish_to)
            self._published = text
        except OSError as exc:
            log.warning("cannot publish the clock to %s: %s", self.publish_to, exc)
            with contextlib.suppress(OSError):
                temp.unlink()


def _signed(delta: timedelta) -> str:
    s = delta.total_seconds()
    return f"{'+' if s >= 0 else '-'}{abs(s):.0f}s"
