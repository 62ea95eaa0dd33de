"""Read queries on open sessions: who is online, at which address, on which device or voucher.

"Open" (`ended_at IS NULL`, served by the `ix_session_open` index) is decided here and nowhere
else, so the daemon, the CLI and the portal all count the same sessions as online. These only
read; the rules built on them (who may log in, who is ended) are the callers'.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address

from sqlalchemy import Connection, Select, false, func, or_, select
from sqlalchemy.orm import Session as DB
from sqlalchemy.orm import joinedload

from hotspotd.core.models import Device, Session, Voucher
from hotspotd.core.ports import normalize_mac


def _open() -> Select[Session]:
    # Ordered by id, the order SQLite reads them through the index anyway: the same rows come
    # back in the same order on PostgreSQL.
    return select(Session).where(Session.ended_at.is_(None)).order_by(Session.id)


def open_sessions(db: DB, *, with_details: bool = False) -> Sequence[Session]:
    """The open sessions; `with_details` loads each one's device, voucher and plan in the
    same query (the operator's list of 2,000 devices: one query, not two more per row)."""
    stmt = _open()
    if with_details:
        stmt = stmt.options(
            joinedload(Session.device), joinedload(Session.voucher).joinedload(Voucher.plan)
        )
    return db.scalars(stmt).all()


def open_at(db: DB, ip: IPv4Address | str) -> Sequence[Session]:
    """The open sessions at this address (one, unless something went wrong)."""
    return db.scalars(_open().where(Session.ip == str(IPv4Address(ip)))).all()


def open_session_at(db: DB, ip: IPv4Address | str, mac: str | None = None) -> Session | None:
    """The open session at this address; with `mac`, only if it is that device's.

    The daemon passes the MAC the neighbour table gives for the address, so a laptop that
    spoofs a phone's address cannot log it out or top up on its card.
    """
    session = db.scalar(_open().where(Session.ip == str(IPv4Address(ip))))
    if session is not None and mac is not None and session.mac != normalize_mac(mac):
        return None
    return session


def open_of_device(db: DB, mac: str) -> Sequence[Session]:
    return db.scalars(_open().where(Session.mac == normalize_mac(mac))).all()


def open_on_voucher(db: DB, voucher_id: int) -> Sequence[Session]:
    return db.scalars(_open().where(Session.voucher_id == voucher_id)).all()


def devices_on_voucher(db: DB, voucher_id: int | None) -> int:
    """How many open sessions share this voucher."""
    count = db.scalar(
        select(func.count()).where(Session.ended_at.is_(None), Session.voucher_id == voucher_id)
    )
    return count or 0


def open_addresses(conn: Connection | DB) -> frozenset[str]:
    """The addresses with an open session; a bare connection will do (the portal's cache)."""
    rows = conn.execute(select(Session.ip).where(Session.ended_at.is_(None)))
    return frozenset(str(ip) for (ip,) in rows)


def count_open(db: DB) -> int:
    """How many sessions are open now: the devices online."""
    return db.scalar(select(func.count()).select_from(_open().order_by(None).subquery())) or 0


def open_matching(db: DB, find: str = "") -> Sequence[tuple[int, str]]:
    """(id, address) of the open sessions whose address, MAC, device name or card code holds
    `find` (any case; `%` and `_` are only themselves), all of them when it is empty.

    Two small columns per session, so 2,000 devices are read in a few milliseconds; a code
    is matched as stored (upper case, no dashes or spaces), whichever way it was typed.
    """
    stmt = select(Session.id, Session.ip).where(Session.ended_at.is_(None))
    if find:
        mac = find.lower().replace("-", ":")
        code = find.upper().replace("-", "").replace(" ", "")
        stmt = (
            stmt.join(Device, Session.device)
            .outerjoin(Voucher, Session.voucher)
            .where(
                or_(
                    Session.ip.contains(find, autoescape=True),
                    Session.mac.icontains(mac, autoescape=True),
                    Device.hostname.icontains(find, autoescape=True),
                    Voucher.code.contains(code, autoescape=True) if code else false(),
                )
            )
        )
    return db.execute(stmt).all()


def with_details(db: DB, ids: Sequence[int]) -> dict[int, Session]:
    """These sessions by id, each with its device, voucher and plan, in one query."""
    if not ids:
        return {}
    stmt = (
        select(Session)
        .where(Session.id.in_(ids))
        .options(joinedload(Session.device), joinedload(Session.voucher).joinedload(Voucher.plan))
    )
    return {s.id: s for s in db.scalars(stmt)}
