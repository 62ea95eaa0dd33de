"""Read queries on vouchers for the operator: a page of the card list, one card's history.

Built to stay quick on a router with a hundred thousand cards: a page is one query of at most
`PAGE + 1` rows (the extra row says whether there is a next page, so no COUNT over the table),
newest first by id, the order of making, which SQLite reads straight from the primary key or
from the plan, batch or state index (each holds the row id in order); the plan and batch come
in the same query. A code is searched by its prefix as a range on the code's unique index.
The state filtered on is the state recorded; the rows say the state at `now` (a card past its
validity is expired before the daemon writes it down).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session as DB
from sqlalchemy.orm import joinedload

from hotspotd.core import codes, records, vouchers
from hotspotd.core.models import Device, Session, Voucher, VoucherState

PAGE = 50
MAX_PAGE = 10_000
MAX_SESSIONS = 100
_CODE_LENGTH = max(codes.ALNUM_BODY, codes.DIGITS_BODY) + 1


@dataclass(frozen=True)
class VoucherFilter:
    """What the list is narrowed to; None is everything."""

    plan_id: int | None = None
    batch_id: int | None = None
    state: VoucherState | None = None
    code: str | None = None  # the start of a code, as typed: any case, spaces and dashes


@dataclass(frozen=True)
class VoucherPage:
    rows: list[records.VoucherRecord]
    page: int
    more: bool  # is there a page after this one


def code_prefix(typed: str | None) -> str | None:
    """A typed (part of a) code as stored: "abc-def" → "ABCDEF"; nothing typed → None."""
    prefix = codes.normalize(typed or "")[:_CODE_LENGTH]
    return prefix or None


def _filtered(wanted: VoucherFilter) -> Select[Voucher]:
    stmt = select(Voucher)
    if wanted.plan_id is not None:
        stmt = stmt.where(Voucher.plan_id == wanted.plan_id)
    if wanted.batch_id is not None:
        stmt = stmt.where(Voucher.batch_id == wanted.batch_id)
    if wanted.state is not None:
        stmt = stmt.where(Voucher.state == wanted.state)
    prefix = code_prefix(wanted.code)
    if prefix is not None:
        # A range, not LIKE: SQLite's LIKE ignores case and so cannot use the index.
        after = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        stmt = stmt.where(Voucher.code >= prefix, Voucher.code < after)
    return stmt


def voucher_page(db: DB, wanted: VoucherFilter, page: int, now: datetime) -> VoucherPage:
    """One page of the cards, newest first, each as it stands at `now`."""
    page = max(1, min(page, MAX_PAGE))
    stmt = (
        _filtered(wanted)
        .options(joinedload(Voucher.plan), joinedload(Voucher.batch))
        .order_by(Voucher.id.desc())
        .offset((page - 1) * PAGE)
        .limit(PAGE + 1)
    )
    found = db.scalars(stmt).all()
    rows = [records.voucher_record(v, now) for v in found[:PAGE]]
    return VoucherPage(rows=rows, page=page, more=len(found) > PAGE)


def find_code(db: DB, typed: str) -> Voucher | None:
    """The voucher of a whole typed code, or None (a typo finds none either)."""
    checked = codes.check(typed)
    if not checked.ok or checked.code is None:
        return None
    return db.scalar(
        select(Voucher)
        .where(Voucher.code == checked.code)
        .options(joinedload(Voucher.plan), joinedload(Voucher.batch))
    )


def history(
    db: DB, voucher: Voucher, now: datetime, *, max_sessions: int = MAX_SESSIONS
) -> records.VoucherHistoryRecord:
    """One card's life: its terms and use, the devices it was used on, its latest sessions."""
    seen_until = func.max(func.coalesce(Session.ended_at, Session.last_activity_at))
    used_on = db.execute(
        select(
            Device.mac,
            Device.hostname,
            func.min(Session.started_at),
            seen_until,
            func.count(Session.id),
        )
        .join(Session.device)
        .where(Session.voucher_id == voucher.id)
        .group_by(Device.id, Device.mac, Device.hostname)
        .order_by(seen_until.desc(), Device.id.desc())
    ).all()
    latest = db.scalars(
        select(Session)
        .where(Session.voucher_id == voucher.id)
        .options(joinedload(Session.device))
        .order_by(Session.started_at.desc(), Session.id.desc())
        .limit(max_sessions)
    ).all()
    state = vouchers.state_now(voucher, now)
    devices = [
        records.device_use_record(
            mac=mac, hostname=hostname, first=first, last=last, sessions=int(n)
        )
        for mac, hostname, first, last, n in used_on
    ]
    return records.voucher_history_record(
        voucher,
        now,
        devices=devices,
        sessions=[records.session_history_record(s, now) for s in latest],
        sessions_total=sum(d["sessions"] for d in devices),
        revocable=state in (VoucherState.UNUSED, VoucherState.ACTIVE),
    )
