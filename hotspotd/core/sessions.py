"""Sessions: login, logout, charging polled counters, enforcement, what the kernel should hold.

Every function takes the database session first and `now`; the caller owns the transaction and
commits it *before* touching the kernel, so a crash between the two is repaired by reconcile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from ipaddress import IPv4Address
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session as DB

from hotspotd.core import accounting, audit, queries, vouchers
from hotspotd.core.accounting import Allowance
from hotspotd.core.models import (
    Device,
    Session,
    SessionKind,
    UsageSample,
    Voucher,
    VoucherState,
)
from hotspotd.core.ports import Counters, DeviceKey, Rate, normalize_mac
from hotspotd.core.reconcile import Desired
from hotspotd.errors import ClientError, Conflict, InvalidInput, NotFound, VoucherRejected

if TYPE_CHECKING:  # only for the type: the core does not load the configuration itself
    from hotspotd.config import FreeAllowanceConfig

# Before this the clock is surely wrong (a router without a real-time clock boots in 1970, or
# at the time fake-hwclock saved): validity is not judged until NTP has set it.
CLOCK_FLOOR = datetime(2025, 1, 1, tzinfo=UTC)


def clock_trusted(now: datetime) -> bool:
    return now >= CLOCK_FLOOR


class Forbidden(ClientError):
    status = 403
    code = "forbidden"
    reason = "forbidden"


class EndCause:
    """Why a session ended, beyond the accounting reasons."""

    LOGOUT = "logout"
    KICKED = "kicked"
    REPLACED = "replaced"  # another device took its place on the voucher
    SWITCHED = "switched"  # the device logged in with another voucher
    REVOKED = "revoked"
    BLOCKED = "blocked"
    LEASE = "lease"  # its address went to another device
    FREE_OFF = "free_off"  # the operator switched the free allowance off
    DAY_END = "day_end"  # a free session at midnight: it goes on as the new day's session
    LEFT = "left"  # its phone no longer answers on the LAN: it went away without logging out


@dataclass(frozen=True)
class FreePolicy:
    """The free daily allowance per device, as the village configured it."""

    enabled: bool = False
    time_s: int | None = None
    data_bytes: int | None = None
    down_bps: int | None = None
    up_bps: int | None = None

    @classmethod
    def from_config(cls, free: FreeAllowanceConfig) -> FreePolicy:
        """The policy the configuration's `[free]` table sets."""
        return cls(free.enabled, free.time_s, free.data_bytes, free.down_bps, free.up_bps)


@dataclass(frozen=True)
class LoginResult:
    session: Session
    resumed: bool  # the same device was already logged in on the same voucher
    ended: Sequence[Session] = field(default_factory=tuple)  # sessions this login ended


def device_for(db: DB, mac: str, now: datetime) -> Device:
    mac = normalize_mac(mac)
    device = db.scalar(select(Device).where(Device.mac == mac))
    if device is None:
        device = Device(mac=mac, first_seen_at=now, last_seen_at=now)
        db.add(device)
        db.flush()
    else:
        device.last_seen_at = now
    return device


def end(db: DB, session: Session, now: datetime, reason: str) -> None:
    if session.ended_at is None:
        session.ended_at = now
        session.end_reason = reason


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


def day_start(now: datetime, tz: ZoneInfo) -> datetime:
    """Midnight of `now`'s day in the village's time zone."""
    local = now.astimezone(tz)
    return datetime.combine(local.date(), time(0), tzinfo=tz)


def free_usage_today(db: DB, device: Device, now: datetime, tz: ZoneInfo) -> accounting.Usage:
    since = day_start(now, tz)
    seconds, up, down = db.execute(
        select(
            func.coalesce(func.sum(Session.seconds), 0),
            func.coalesce(func.sum(Session.bytes_up), 0),
            func.coalesce(func.sum(Session.bytes_down), 0),
        ).where(
            Session.kind == SessionKind.FREE,
            Session.device_id == device.id,
            Session.started_at >= since,
        )
    ).one()
    return accounting.Usage(since, int(seconds), int(up) + int(down))


def free_allowance(policy: FreePolicy) -> Allowance:
    return Allowance(time_s=policy.time_s, data_bytes=policy.data_bytes)


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


@dataclass
class ChargeReport:
    sessions: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    resets: int = 0  # counters found lower than last time: the kernel table was rebuilt


def _rise(now_value: int, last: int) -> tuple[int, bool]:
    """Bytes since the last read; a counter that went down was restarted from zero."""
    if now_value >= last:
        return now_value - last, False
    return now_value, True


def charge(
    db: DB, counters: Mapping[DeviceKey, Counters], now: datetime, elapsed_s: int
) -> ChargeReport:
    """Write one poll: bytes per session and voucher, online seconds, usage samples.

    A voucher's online time grows once per poll however many of its devices are on. All of it
    is one transaction, so a power cut loses at most one poll.
    """
    report = ChargeReport()
    elapsed_s = max(0, elapsed_s)
    timed: set[int] = set()
    for s in queries.open_sessions(db):
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
        if up or down:
            s.last_activity_at = now
            db.add(
                UsageSample(
                    session_id=s.id, taken_at=now, seconds=elapsed_s, bytes_up=up, bytes_down=down
                )
            )
        if s.voucher is not None:
            seconds = 0 if s.voucher.id in timed else elapsed_s
            timed.add(s.voucher.id)
            vouchers.charge(s.voucher, seconds=seconds, bytes_used=up + down)
    return report


def rebaseline(db: DB, keys: Iterable[DeviceKey]) -> None:
    """Devices just (re)added to the kernel start counting from zero."""
    fresh = {(str(k.ip), k.mac) for k in keys}
    for s in queries.open_sessions(db):
        if (s.ip, s.mac) in fresh:
            s.kernel_up = s.kernel_down = 0


def split_at_midnight(db: DB, now: datetime, tz: ZoneInfo) -> list[Session]:
    """Free sessions opened before today's midnight go on as sessions of today.

    The free allowance is per day, counted over the sessions of that day: without this, a
    session opened at 23:50 would count as none of today's use and never end. The old one ends
    at midnight (reason `day_end`), the new one starts there with the same address, MAC and
    kernel counters, so the phone stays online and the kernel sees no change.
    """
    midnight = day_start(now, tz)
    fresh = []
    for old in queries.open_sessions(db):
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
    split_at_midnight(db, now, tz)
    floor_ok = clock_trusted(now)

    def trusted(first_used_at: datetime | None) -> bool:
        if not floor_ok:
            return False
        return provisional_since is None or (
            first_used_at is not None and first_used_at >= provisional_since
        )

    ended: list[tuple[Session, str]] = []
    for s in queries.open_sessions(db):
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
            why = accounting.end_reason(
                free_allowance(policy), free_usage_today(db, s.device, now, tz), now
            )
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


def desired(db: DB, *, garden: Iterable[IPv4Address], policy: FreePolicy) -> Desired:
    """What the kernel should hold, from the database alone."""
    devices = db.scalars(select(Device).where(Device.trusted | Device.blocked)).all()
    blocked = frozenset(d.mac for d in devices if d.blocked)
    trusted = frozenset(d.mac for d in devices if d.trusted and not d.blocked)
    authorized: dict[DeviceKey, Rate] = {}
    for s in queries.open_sessions(db):
        if s.mac in blocked:
            continue
        if s.voucher is not None:
            rate = Rate(s.voucher.plan.down_bps, s.voucher.plan.up_bps)
        else:
            rate = Rate(policy.down_bps, policy.up_bps)
        authorized[DeviceKey(IPv4Address(s.ip), s.mac)] = rate
    return Desired(
        authorized=authorized, trusted=trusted, blocked=blocked, garden=frozenset(garden)
    )


@dataclass(frozen=True)
class Status:
    session: Session
    plan: str
    seconds_left: int | None
    data_left: int | None
    valid_until: datetime | None
    devices: int  # devices logged in on the same voucher


def status(
    db: DB,
    *,
    ip: IPv4Address,
    now: datetime,
    policy: FreePolicy,
    tz: ZoneInfo,
    mac: str | None = None,
) -> Status:
    s = queries.open_session_at(db, ip, mac)
    if s is None:
        raise NotFound("this device is not logged in", reason="not_logged_in")
    if s.voucher is not None:
        st = vouchers.standing_of(s.voucher, now)
        on = queries.devices_on_voucher(db, s.voucher_id)
        return Status(
            s, s.voucher.plan.name, st.seconds_left, st.data_left, st.valid_until, on or 1
        )
    allowance = free_allowance(policy)
    usage = free_usage_today(db, s.device, now, tz)
    return Status(
        s,
        "free",
        accounting.time_allowance_left(allowance, usage),
        accounting.data_left(allowance, usage),
        day_start(now, tz) + timedelta(days=1),
        1,
    )


def extend(
    db: DB, *, code: str, seconds: int, data_bytes: int, actor: str, now: datetime
) -> Voucher:
    """Give a voucher more time (also moving its validity) and/or data."""
    if seconds < 0 or data_bytes < 0 or (seconds == 0 and data_bytes == 0):
        raise InvalidInput("extend by a positive time and/or data amount", reason="nothing_to_add")
    voucher = vouchers.find(db, code)
    if voucher.state is VoucherState.REVOKED:
        raise Conflict("that voucher is revoked", reason="revoked")
    voucher.extra_seconds += seconds
    voucher.extra_bytes += data_bytes
    if voucher.state in (VoucherState.EXPIRED, VoucherState.USED_UP):
        voucher.state = VoucherState.ACTIVE if voucher.first_used_at else VoucherState.UNUSED
        voucher.ended_at = None
    audit.record(db, now, actor, "voucher.extend", voucher.code, f"+{seconds}s +{data_bytes}B")
    return voucher


def set_flag(db: DB, *, mac: str, flag: str, value: bool, actor: str, now: datetime) -> Device:
    """Trust, untrust, block or unblock a device by MAC; blocking ends its sessions."""
    if flag not in ("trusted", "blocked"):
        raise InvalidInput(f"unknown device flag {flag!r}", reason="unknown_flag")
    device = device_for(db, mac, now)
    setattr(device, flag, value)
    if flag == "blocked" and value:
        for s in queries.open_of_device(db, device.mac):
            end(db, s, now, EndCause.BLOCKED)
    verb = {"trusted": ("trust", "untrust"), "blocked": ("block", "unblock")}[flag]
    audit.record(db, now, actor, f"device.{verb[0] if value else verb[1]}", device.mac)
    return device


class NotLoggedIn(NotFound):
    """The device asks for something that needs a session, and has none."""

    reason = "not_logged_in"


class WiderCard(Conflict):
    """The card has no limit where the voucher in use has one: adding it would add nothing
    there (an unlimited-data card onto a 1 GB one). Log in with it instead."""

    reason = "wider_card"


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
