"""The JSON shapes of plans, vouchers, sessions, market listings, lessons and operator accounts.

One place for what a plan or a voucher looks like to a program: `hotspotctl --json` prints
these, and the control socket, the operator's pages and exports are to hand out the same.
Values are JSON's own (numbers, strings, booleans, null); times are ISO 8601 with their UTC
offset, limits left out are null, and codes appear as printed on the card.
"""

from __future__ import annotations

from datetime import datetime
from typing import NotRequired, TypedDict

from hotspotd.core import codes, sessions, vouchers
from hotspotd.core.models import Lesson, Listing, Operator, Plan, Session, Voucher


class PlanRecord(TypedDict):
    name: str
    price_rp: int
    validity_s: int | None
    time_s: int | None
    data_bytes: int | None
    down_bps: int | None
    up_bps: int | None
    devices: int | None
    idle_s: int | None
    retired: bool
    # only in a listing that counted the plan's vouchers
    vouchers_unused: NotRequired[int]
    vouchers_active: NotRequired[int | None]


class VoucherRecord(TypedDict):
    code: str
    plan: str
    batch: str
    price_rp: int
    state: str  # as it stands at the moment asked about, not only as recorded
    first_used_at: str | None
    used_seconds: int
    used_bytes: int
    time_left_s: int | None
    data_left_bytes: int | None
    valid_until: str | None


class ListingRecord(TypedDict):
    id: int
    title: str
    seller: str
    price_rp: int | None
    unit: str
    contact: str
    description: str
    hidden: bool
    updated_at: str | None


class LessonRecord(TypedDict):
    slug: str
    topic: str
    title: str
    summary: str
    hidden: bool


class OperatorRecord(TypedDict):
    username: str
    role: str
    created_at: str | None
    disabled_at: str | None


def iso(value: datetime | None) -> str | None:
    """A time as the records give it; None (never, not yet) stays null."""
    return value.isoformat() if value else None


def plan_record(plan: Plan, unused: int | None = None, active: int | None = None) -> PlanRecord:
    """A plan's terms; with `unused` (and `active`) counts of its vouchers, as a listing has."""
    out: PlanRecord = {
        "name": plan.name,
        "price_rp": plan.price_rp,
        "validity_s": plan.validity_s,
        "time_s": plan.time_s,
        "data_bytes": plan.data_bytes,
        "down_bps": plan.down_bps,
        "up_bps": plan.up_bps,
        "devices": plan.devices,
        "idle_s": plan.idle_s,
        "retired": plan.retired_at is not None,
    }
    if unused is not None:
        out["vouchers_unused"] = unused
        out["vouchers_active"] = active
    return out


def voucher_record(voucher: Voucher, now: datetime) -> VoucherRecord:
    """A voucher and where it stands at `now`: its state, what is left, until when."""
    standing = vouchers.standing_of(voucher, now)
    return {
        "code": codes.display(voucher.code),
        "plan": voucher.plan.name,
        "batch": voucher.batch.name,
        "price_rp": voucher.price_rp,
        "state": vouchers.state_now(voucher, now).value,
        "first_used_at": iso(voucher.first_used_at),
        "used_seconds": voucher.used_seconds,
        "used_bytes": voucher.used_bytes,
        "time_left_s": standing.seconds_left,
        "data_left_bytes": standing.data_left,
        "valid_until": iso(standing.valid_until),
    }


def listing_record(item: Listing) -> ListingRecord:
    """A market listing, hidden or not (the record says which)."""
    return {
        "id": item.id,
        "title": item.title,
        "seller": item.seller,
        "price_rp": item.price_rp,
        "unit": item.unit,
        "contact": item.contact,
        "description": item.description,
        "hidden": item.hidden,
        "updated_at": iso(item.updated_at),
    }


def lesson_record(item: Lesson) -> LessonRecord:
    """A lesson as the shelf lists it; the body is left out."""
    return {
        "slug": item.slug,
        "topic": item.topic.value,
        "title": item.title,
        "summary": item.summary,
        "hidden": item.hidden,
    }


def operator_record(operator: Operator) -> OperatorRecord:
    """An operator account; its password hash is never part of it."""
    return {
        "username": operator.username,
        "role": operator.role.value,
        "created_at": iso(operator.created_at),
        "disabled_at": iso(operator.disabled_at),
    }


class StatusRecord(TypedDict):
    """A phone's own session, as its status page shows it."""

    ip: str
    mac: str
    kind: str
    plan: str
    code: str | None
    seconds_left: int | None
    data_left: int | None
    valid_until: str | None
    devices: int
    started_at: str | None
    bytes_up: int
    bytes_down: int


def status_record(st: sessions.Status) -> StatusRecord:
    s = st.session
    return {
        "ip": s.ip,
        "mac": s.mac,
        "kind": s.kind.value,
        "plan": st.plan,
        "code": codes.display(s.voucher.code) if s.voucher else None,
        "seconds_left": st.seconds_left,
        "data_left": st.data_left,
        "valid_until": iso(st.valid_until),
        "devices": st.devices,
        "started_at": iso(s.started_at),
        "bytes_up": s.bytes_up,
        "bytes_down": s.bytes_down,
    }


class OnlineRecord(TypedDict):
    """A device online now, as the operator sees it."""

    ip: str
    mac: str
    hostname: str | None
    kind: str
    plan: str
    code: str | None
    started_at: str | None
    idle_s: int
    bytes_up: int
    bytes_down: int
    down_bps: int
    up_bps: int
    seconds_left: int | None
    data_left: int | None


class OnlinePageRecord(TypedDict):
    """One page of the devices online (the `online` operation asked with a page or a search)."""

    devices: list[OnlineRecord]
    online: int  # every device online
    found: int  # those matching the search; all of them without one
    page: int  # from 1; a page asked past the end is the last
    pages: int
    per_page: int


def online_record(s: Session, now: datetime, down_bps: int, up_bps: int) -> OnlineRecord:
    left = vouchers.standing_of(s.voucher, now) if s.voucher is not None else None
    return {
        "ip": s.ip,
        "mac": s.mac,
        "hostname": s.device.hostname,
        "kind": s.kind.value,
        "plan": s.voucher.plan.name if s.voucher else "free",
        "code": codes.display(s.voucher.code) if s.voucher else None,
        "started_at": iso(s.started_at),
        "idle_s": int((now - s.last_activity_at).total_seconds()),
        "bytes_up": s.bytes_up,
        "bytes_down": s.bytes_down,
        "down_bps": down_bps,
        "up_bps": up_bps,
        "seconds_left": left.seconds_left if left else None,
        "data_left": left.data_left if left else None,
    }


class DeviceUseRecord(TypedDict):
    """A device a voucher was used on: first and last seen on it, and in how many sessions."""

    mac: str
    hostname: str | None  # as its DHCP request named it, if it did
    first_seen_at: str | None
    last_seen_at: str | None
    sessions: int


class SessionHistoryRecord(TypedDict):
    """One session of a voucher's past (or the one going on: `ended_at` null)."""

    started_at: str | None
    ended_at: str | None
    end_reason: str | None
    ip: str
    mac: str
    hostname: str | None
    bytes_down: int
    bytes_up: int
    duration_s: int  # from login to its end, or to `now` while it goes on
    online_s: int  # the seconds counted against the voucher's time


class VoucherHistoryRecord(VoucherRecord):
    """A voucher, where it stands, and its past, as the operator's card page shows it."""

    batch_note: str | None
    created_at: str | None
    revoked_at: str | None
    time_s: int | None  # the whole time allowance, given on top included; null: unlimited
    data_bytes: int | None
    revocable: bool  # unused or active: revoking it still stops something
    devices: list[DeviceUseRecord]
    sessions: list[SessionHistoryRecord]  # newest first, the latest few
    sessions_total: int


def device_use_record(
    *, mac: str, hostname: str | None, first: datetime | None, last: datetime | None, sessions: int
) -> DeviceUseRecord:
    return {
        "mac": mac,
        "hostname": hostname,
        "first_seen_at": iso(first),
        "last_seen_at": iso(last),
        "sessions": sessions,
    }


def session_history_record(s: Session, now: datetime) -> SessionHistoryRecord:
    end = s.ended_at or now
    return {
        "started_at": iso(s.started_at),
        "ended_at": iso(s.ended_at),
        "end_reason": s.end_reason,
        "ip": s.ip,
        "mac": s.mac,
        "hostname": s.device.hostname,
        "bytes_down": s.bytes_down,
        "bytes_up": s.bytes_up,
        "duration_s": max(0, int((end - s.started_at).total_seconds())),
        "online_s": s.seconds,
    }


def voucher_history_record(
    voucher: Voucher,
    now: datetime,
    *,
    devices: list[DeviceUseRecord],
    sessions: list[SessionHistoryRecord],
    sessions_total: int,
    revocable: bool,
) -> VoucherHistoryRecord:
    allowance = vouchers.allowance_of(voucher)
    out: VoucherHistoryRecord = {
        **voucher_record(voucher, now),
        "batch_note": voucher.batch.note,
        "created_at": iso(voucher.created_at),
        "revoked_at": iso(voucher.revoked_at),
        "time_s": allowance.time_s,
        "data_bytes": allowance.data_bytes,
        "revocable": revocable,
        "devices": devices,
        "sessions": sessions,
        "sessions_total": sessions_total,
    }
    return out
