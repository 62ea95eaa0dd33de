"""Metering: charging each poll of the kernel's byte counters to sessions and vouchers.

Bytes per session and per voucher, online seconds, usage samples; a counter found lower than
last time was restarted by a rebuilt kernel table. The caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from ipaddress import IPv4Address

from sqlalchemy import insert
from sqlalchemy.orm import Session as DB

from hotspotd.core import queries, vouchers
from hotspotd.core.models import Session, UsageSample
from hotspotd.core.ports import Counters, DeviceKey


@dataclass
class ChargeReport:
    sessions: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    resets: int = 0  # counters found lower than last time: the kernel table was rebuilt
    rises: dict[int, tuple[int, int]] = field(default_factory=dict)  # session id -> up, down


def _rise(now_value: int, last: int) -> tuple[int, bool]:
    """Bytes since the last read; a counter that went down was restarted from zero."""
    if now_value >= last:
        return now_value - last, False
    return now_value, True


def charge(
    db: DB,
    counters: Mapping[DeviceKey, Counters],
    now: datetime,
    elapsed_s: int,
    online: Sequence[Session] | None = None,
) -> ChargeReport:
    """Write one poll: bytes per session and voucher, online seconds, usage samples.

    A voucher's online time grows once per poll however many of its devices are on. All of it
    is one transaction, so a power cut loses at most one poll. `online`: the open sessions
    with their vouchers, when the caller has them already.
    """
    report = ChargeReport()
    elapsed_s = max(0, elapsed_s)
    timed: set[int] = set()
    samples: list[dict[str, object]] = []
    # Each session's voucher in the same query: a lazy load per session would also flush the
    # sessions charged so far, one by one (2,000 devices: 4,000 statements instead of a few).
    for s in queries.open_sessions(db, with_details=True) if online is None else online:
        c = counters.get(DeviceKey(IPv4Address(s.ip), s.mac))
        up = down = 0
        if c is not None:
            up, reset_up = _rise(c.bytes_up, s.kernel_up)
            down, reset_down = _rise(c.bytes_down, s.kernel_down)
            report.resets += int(reset_up or reset_down)
            s.kernel_up, s.kernel_down = c.bytes_up, c.bytes_down
        s.bytes_up += up
        s.bytes_down += down
        s.seconds += elapsed_s
        report.sessions += 1
        report.bytes_up += up
        report.bytes_down += down
        report.rises[s.id] = (up, down)
        if up or down:
            s.last_activity_at = now
            samples.append(
                {"session_id": s.id, "taken_at": now, "seconds": elapsed_s,
                 "bytes_up": up, "bytes_down": down}
            )  # fmt: skip
        if s.voucher is not None:
            seconds = 0 if s.voucher.id in timed else elapsed_s
            timed.add(s.voucher.id)
            vouchers.charge(s.voucher, seconds=seconds, bytes_used=up + down)
    if samples:
        # One executemany: added as objects, SQLite would insert them one statement each to
        # read every new id back, and nothing here needs the ids.
        db.execute(insert(UsageSample), samples)
    return report


def rebaseline(db: DB, keys: Iterable[DeviceKey]) -> None:
    """Devices just (re)added to the kernel start counting from zero."""
    fresh = {(str(k.ip), k.mac) for k in keys}
    # A login adds one device: look up its address, not all 2,000 sessions online.
    ips = {ip for ip, _mac in fresh}
    few = len(ips) <= 20
    for s in (
        [s for ip in ips for s in queries.open_at(db, ip)] if few else queries.open_sessions(db)
    ):
        if (s.ip, s.mac) in fresh:
            s.kernel_up = s.kernel_down = 0
