"""Login: a device logging in with a voucher or the free allowance, topping up, logging out.

The rules of who may be online where: one device per address, the plan's device limit (the
newest login takes over from the device seen longest ago), a blocked device refused, a card
added on top of the one in use. Every function takes the database session first and `now`;
the caller owns the transaction and commits it *before* touching the kernel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from ipaddress import IPv4Address
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session as DB

from hotspotd.core import accounting, audit, queries, vouchers
from hotspotd.core.models import Device, Session, SessionKind, Voucher, VoucherState
from hotspotd.core.ports import normalize_mac
from hotspotd.core.sessions import (
    EndCause,
    Forbidden,
    FreePolicy,
    NotLoggedIn,
    WiderCard,
    device_for,
    end,
    free_allowance,
    free_usage_today,
)
from hotspotd.errors import Conflict, NotFound, VoucherRejected


@dataclass(frozen=True)
class LoginResult:
    session: Session
    resumed: bool  # the same device was already logged in on the same voucher
    ended: Sequence[Session] = field(default_factory=tuple)  # sessions this login ended


def _clear_way(db: DB, ip: str, mac: str, now: datetime) -> list[Session]:
    """End sessions that stand in the way of this device at this address."""
    ended = []
    for other in queries.open_at(db, ip):
        if other.mac != mac:
            end(db, other, now, EndCause.LEASE)
            ended.append(other)
    return ended


def login_voucher(db: DB, *, ip: IPv4Address, mac: str, code: str, now: datetime) -> LoginResult:
    """Log a device in with a voucher code. Raises VoucherTypo, NotFound, VoucherRejected."""
    ip_text, mac = str(IPv4Address(ip)), normalize_mac(mac)
    voucher = vouchers.find(db, code)
    device = device_for(db, mac, now)
    if device.blocked:
        raise Forbidden("this device is blocked by the operator", reason="device_blocked")
    vouchers.redeem(db, voucher, now)  # refuses expired, used up, revoked

    ended = _clear_way(db, ip_text, mac, now)
    mine = next(iter(queries.open_of_device(db, mac)), None)
    if mine is not None and mine.voucher_id == voucher.id:
        mine.ip = ip_text
        mine.last_activity_at = now
        return LoginResult(mine, resumed=True, ended=ended)
    if mine is not None:
        end(db, mine, now, EndCause.SWITCHED)
        ended.append(mine)

    limit = voucher.plan.devices
    if limit is not None:
        on_voucher = sorted(
            queries.open_on_voucher(db, voucher.id), key=lambda s: (s.last_activity_at, s.id)
        )
        # At the limit the newest login takes over from the device seen longest ago: a phone
        # that came back with a new random MAC is not locked out by its own old self.
        for old in on_voucher[: max(0, len(on_voucher) - limit + 1)]:
            end(db, old, now, EndCause.REPLACED)
            ended.append(old)
            # For the operator: a card taken over by another device (a phone back with a new
            # random MAC, or someone who read the code off the card or the air).
            audit.record(
                db,
                now,
                "resident",
                "voucher.takeover",
                voucher.code,
                f"{old.mac} at {old.ip} replaced by {mac} at {ip_text}",
            )

    return _begin(db, SessionKind.VOUCHER, voucher, device, ip_text, now, ended)


def _begin(
    db: DB,
    kind: SessionKind,
    voucher: Voucher | None,
    device: Device,
    ip: str,
    now: datetime,
    ended: list[Session],
) -> LoginResult:
    session = Session(
        kind=kind,
        voucher=voucher,
        device=device,
        ip=ip,
        mac=device.mac,
        started_at=now,
        last_activity_at=now,
    )
    db.add(session)
    db.flush()
    return LoginResult(session, resumed=False, ended=ended)


def login_free(
    db: DB, *, ip: IPv4Address, mac: str, now: datetime, policy: FreePolicy, tz: ZoneInfo
) -> LoginResult:
    """Take the free daily allowance, counted per device per day in the village's time zone."""
    if not policy.enabled:
        raise Forbidden("the free allowance is not offered here", reason="free_not_offered")
    ip_text, mac = str(IPv4Address(ip)), normalize_mac(mac)
    device = device_for(db, mac, now)
    if device.blocked:
        raise Forbidden("this device is blocked by the operator", reason="device_blocked")
    reason = accounting.end_reason(
        free_allowance(policy), free_usage_today(db, device, now, tz), now
    )
    if reason is not None:
        raise VoucherRejected(
            "used_up", "today's free internet is used up; come back tomorrow", reason="free_used_up"
        )
    ended = _clear_way(db, ip_text, mac, now)
    mine = next(iter(queries.open_of_device(db, mac)), None)
    if mine is not None and mine.kind is SessionKind.FREE:
        mine.ip = ip_text
        return LoginResult(mine, resumed=True, ended=ended)
    if mine is not None:
        raise Conflict("this device is already logged in with a voucher", reason="has_voucher")
    return _begin(db, SessionKind.FREE, None, device, ip_text, now, ended)


def logout(
    db: DB,
    *,
    ip: IPv4Address,
    now: datetime,
    mac: str | None = None,
    reason: str = EndCause.LOGOUT,
) -> Session:
    session = queries.open_session_at(db, ip, mac)
    if session is None:
        raise NotFound("no device is logged in at that address", reason="not_logged_in")
    end(db, session, now, reason)
    return session


@dataclass(frozen=True)
class TopUp:
    voucher: Voucher  # the voucher of the session, now bigger
    added: Voucher  # the card that was used up to top it up
    seconds: int
    data_bytes: int


def top_up(db: DB, *, ip: IPv4Address, code: str, now: datetime, mac: str | None = None) -> TopUp:
    """A logged-in resident adds another card to the voucher in use.

    The new card must be unused and not revoked; it is used up at once (its price is booked
    now) and its plan's online time (or, for a plan without one, its validity) and data are
    added on top of the running voucher, which also moves that voucher's validity.
    """
    session = queries.open_session_at(db, ip, mac)
    if session is None:
        raise NotLoggedIn("this device is not logged in")
    current = session.voucher
    if current is None:
        raise Conflict(
            "the free allowance cannot be topped up; log in with the code instead",
            reason="free_no_topup",
        )
    card = vouchers.find(db, code)  # VoucherTypo, NotFound
    if card.id == current.id:
        raise Conflict("that is the code already in use on this device", reason="same_card")
    state = vouchers.state_now(card, now)
    if state is VoucherState.ACTIVE:
        raise Conflict(
            "that code is in use already; log in with it instead of topping up",
            reason="card_in_use",
        )
    if state is not VoucherState.UNUSED:
        vouchers.redeem(db, card, now)  # raises VoucherRejected with the state's message
    mine = vouchers.allowance_of(current)
    if (card.plan.data_bytes is None and mine.data_bytes is not None) or (
        card.plan.time_s is None
        and card.plan.validity_s is None
        and (mine.time_s is not None or mine.validity_s is not None)
    ):
        raise WiderCard("this card has no limit where the one in use has: log in with it")
    seconds = card.plan.time_s or card.plan.validity_s or 0
    data_bytes = card.plan.data_bytes or 0
    card.state = VoucherState.USED_UP
    card.first_used_at = now
    card.ended_at = now
    current.extra_seconds += seconds
    current.extra_bytes += data_bytes
    if current.state in (VoucherState.EXPIRED, VoucherState.USED_UP):
        current.state = VoucherState.ACTIVE
        current.ended_at = None
    audit.record(
        db,
        now,
        "resident",
        "voucher.topup",
        card.code,
        f"onto {current.code}: +{seconds}s +{data_bytes}B",
    )
    db.flush()
    return TopUp(current, card, seconds, data_bytes)
