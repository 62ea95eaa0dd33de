"""The control socket's operations, as one table: name → parameters → who may call → core call.

Two kinds of caller reach the socket (mode 0660, group `hotspot`), told apart by SO_PEERCRED:

- **residents' operations** (login, top-up, logout, status and counting a typo) are what the
  residents' portal asks for a phone. The portal is the surface every phone reaches, so it
  gets these and nothing else; the phone's address is a parameter, its MAC is the kernel's.
- **operator operations** (online, kick, extend, trust, block, revoke, plan edits, reconcile,
  and the admin's settings and backups in `control.admin`) are accepted only from root
  (`hotspotctl`) and from the operator UI's own Unix user (`[daemon] operator_user`). Each
  carries an `actor` — the operator account, `cli:<unix user>` from hotspotctl — which is
  refused when missing and written to the audit log.

Every operation runs under the daemon's lock, commits its transaction, and puts the change in
the kernel before it answers: a revoked card is cut when `hotspotctl voucher revoke` returns.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import pwd
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from ipaddress import IPv4Address
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session as DB

from hotspotd import config as config_mod
from hotspotd.control import admin, online
from hotspotd.control.params import (
    Changes,
    Flag,
    Integer,
    LanAddress,
    Mac,
    OptionalInteger,
    Schema,
    Text,
    parse,
)
from hotspotd.control.server import Peer
from hotspotd.control.wire import ControlError
from hotspotd.core import (
    audit,
    codes,
    login,
    plans,
    queries,
    reconcile,
    records,
    sessions,
    settings,
    vouchers,
)
from hotspotd.core.models import Session
from hotspotd.core.ports import normalize_mac
from hotspotd.core.throttle import GuessThrottle
from hotspotd.errors import (
    ClientError,
    InvalidInput,
    NotFound,
    VoucherRejected,
    VoucherTypo,
)

log = logging.getLogger("hotspotd.control")
T = TypeVar("T")

MAX_ACTOR = 64  # the audit log's actor column


class Role(enum.StrEnum):
    RESIDENT = "resident"
    OPERATOR = "operator"


class NotAllowed(ClientError):
    status = 403
    code = "forbidden"
    reason = "operator_only"


class NoMac(ClientError):
    status = 409
    code = "no_mac"
    reason = "no_mac"


class UnknownOp(ClientError):
    status = 400
    code = "unknown_op"
    reason = "unknown_op"


class Service(Protocol):
    """What the operations need from the daemon that serves them."""

    cfg: config_mod.Config
    settings: settings.Live
    tz: ZoneInfo
    lock: threading.RLock
    guesses: GuessThrottle
    mac_of: Callable[[IPv4Address], str | None]

    def now(self) -> datetime: ...

    def free_policy(self, tx: DB) -> sessions.FreePolicy: ...

    def monotonic(self) -> float: ...

    def transaction(self) -> contextlib.AbstractContextManager[DB]: ...

    def reconcile(self) -> reconcile.Plan: ...

    def enforce(self) -> list[tuple[Any, str]]: ...

    def rates_of(self, session_id: int) -> tuple[int, int]: ...


@dataclass(frozen=True)
class Caller:
    """Who asks: the kernel's word for the process, and for operator ops the named actor."""

    peer: Peer
    actor: str  # "resident" for residents' operations

    def __str__(self) -> str:
        return f"{self.actor} ({self.peer})"


Args = dict[str, Any]
Run = Callable[[Service, Args, Caller], Any]


@dataclass(frozen=True)
class Op:
    params: Schema
    role: Role
    run: Run


@dataclass(frozen=True)
class Access:
    """Which peers may call which operations, by uid (SO_PEERCRED), looked up at each call."""

    operator_user: str | None = None

    def roles_of(self, peer: Peer) -> frozenset[Role]:
        if peer.uid == 0:
            return frozenset(Role)
        if self.operator_user is not None:
            with contextlib.suppress(KeyError):
                if pwd.getpwnam(self.operator_user).pw_uid == peer.uid:
                    return frozenset({Role.OPERATOR})
        return frozenset({Role.RESIDENT})


def handle(service: Service, access: Access, name: str, raw: Mapping[str, Any], peer: Peer) -> Any:
    """Check who asks and what, then run the operation under the daemon's lock."""
    op = OPS.get(name)
    if op is None:
        raise UnknownOp(f"unknown operation {name!r}")
    if op.role not in access.roles_of(peer):
        log.warning("refused %s from %s: an operator operation", name, peer)
        raise NotAllowed(f"{name!r} is an operator operation; this caller may not ask for it")
    params = dict(raw)
    if op.role is Role.OPERATOR:
        actor = _actor(params.pop("actor", None))
        log.info("operator %s (%s) asked %s %s", actor, peer, name, _loggable(params))
    else:
        actor = "resident"
    args = parse(op.params, params, service.cfg.network.lan_prefix)
    with service.lock:
        return op.run(service, args, Caller(peer, actor))


def _actor(raw: Any) -> str:
    if raw is None:
        raise InvalidInput(
            "operator operations need an 'actor': who asks (e.g. cli:<user>)", reason="no_actor"
        )
    if not isinstance(raw, str) or not 0 < len(raw.strip()) <= MAX_ACTOR:
        raise InvalidInput(f"'actor' must be text of 1 to {MAX_ACTOR} characters",
                           reason="no_actor")  # fmt: skip
    if not raw.isprintable():
        raise InvalidInput("'actor' must be printable text", reason="no_actor")
    return raw.strip()


def _loggable(params: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={str(v)[:40]!r}" for k, v in sorted(params.items()))


# -- residents' operations ------------------------------------------------------------------


def log_in(svc: Service, a: Args, who: Caller) -> dict[str, Any]:
    ip, free, code = a["ip"], a["free"], a["code"]
    if not free and code is None:
        raise InvalidInput("'code' is required")
    mac = _mac_of(svc, ip)
    now = svc.now()
    with svc.transaction() as tx:  # written and committed before the kernel is touched
        if free:
            result = login.login_free(tx, ip=ip, mac=mac, now=now, policy=svc.free_policy(tx),
                                      tz=svc.tz)  # fmt: skip
        else:
            result = _code_attempt(
                svc, tx, ip, lambda: login.login_voucher(tx, ip=ip, mac=mac, code=code, now=now)
            )
        session_id = result.session.id
    svc.reconcile()
    log.info("login %s %s session %s%s", ip, mac, session_id, " (free)" if free else "")
    return _status(svc, ip, mac)


def wrong_code(svc: Service, a: Args, who: Caller) -> dict[str, Any]:
    """The portal caught a typo itself (no daemon needed for that): count it here too."""
    ip = a["ip"]
    device = svc.mac_of(ip) or str(ip)
    now = svc.monotonic()
    _refuse_if_throttled(svc, device, now)
    svc.guesses.miss(device, now)
    return {"misses": svc.guesses.misses(device, now)}


def topup(svc: Service, a: Args, who: Caller) -> dict[str, Any]:
    """A logged-in resident adds another card's time and data to the voucher in use."""
    ip, code = a["ip"], a["code"]
    mac = _mac_of(svc, ip)
    now = svc.now()
    with svc.transaction() as tx:

        def attempt() -> login.TopUp | login.LoginResult:
            try:
                return login.top_up(tx, ip=ip, code=code, now=now, mac=mac)
            except sessions.WiderCard:
                # An unlimited card adds nothing onto a limited one: the phone goes on with
                # the new card, and the old one keeps what is left of it for later.
                return login.login_voucher(tx, ip=ip, mac=mac, code=code, now=now)

        result = _code_attempt(svc, tx, ip, attempt)
        if isinstance(result, login.TopUp):
            log.info("top-up at %s: +%ss +%sB onto voucher %s", ip, result.seconds,
                     result.data_bytes, result.voucher.id)  # fmt: skip
        else:
            log.info("top-up at %s: switched to the wider card %s", ip, result.session.id)
    svc.reconcile()
    return {**_status(svc, ip, mac), "switched": not isinstance(result, login.TopUp)}


def log_out(svc: Service, a: Args, who: Caller) -> dict[str, Any]:
    ip = a["ip"]
    mac = _mac_of(svc, ip)
    with svc.transaction() as tx:
        login.logout(tx, ip=ip, mac=mac, now=svc.now())
    svc.reconcile()
    return {"ip": str(ip), "logged_out": True}


def status(svc: Service, a: Args, who: Caller) -> dict[str, Any]:
    return _status(svc, a["ip"], _mac_of(svc, a["ip"]))


def _code_attempt(svc: Service, tx: DB, ip: IPv4Address, attempt: Callable[[], T]) -> T:
    """Try a typed code unless this device guessed wrong too often.

    While the hotspot as a whole is being guessed at, a wrong code is answered "wait", but a
    valid one goes through and is written to the audit log: a hit then is rare enough to look
    at, and the typos of others must never lock a resident with a good card out.
    """
    device = svc.mac_of(ip) or str(ip)
    now = svc.monotonic()
    _refuse_if_throttled(svc, device, now)
    guessing = svc.guesses.guessing(now)
    try:
        result = attempt()
    except sessions.NotLoggedIn:
        raise
    except (VoucherTypo, VoucherRejected, NotFound):  # NotFound: no voucher has that code
        svc.guesses.miss(device, now)
        if guessing:
            raise _throttled(guessing) from None
        raise
    if guessing:
        log.warning("a code from %s (%s) was good while the hotspot is being guessed at",
                    ip, device)  # fmt: skip
        audit.record(tx, svc.now(), "resident", "voucher.guess_window", device,
                     f"a good code from {ip} while guessing went on")  # fmt: skip
    return result


def _refuse_if_throttled(svc: Service, device: str, now: float) -> None:
    wait = svc.guesses.retry_after(device, now)
    if wait:
        raise _throttled(wait)


def _throttled(wait: int) -> ControlError:
    return ControlError(
        "throttled",
        f"too many wrong codes; try again in {wait} seconds",
        {"retry_after": wait},
        reason="too_many_wrong",
    )


def _mac_of(svc: Service, ip: IPv4Address) -> str:
    """The MAC the neighbour table gives for this address: what a device is, as at login."""
    mac = svc.mac_of(ip)
    if mac is None:
        raise NoMac("this device's MAC address is not known yet; try again in a moment")
    return mac


def _status(svc: Service, ip: IPv4Address, mac: str | None = None) -> dict[str, Any]:
    with svc.transaction() as tx:
        st = sessions.status(tx, ip=ip, now=svc.now(), policy=svc.free_policy(tx), tz=svc.tz,
                             mac=mac)  # fmt: skip
        return dict(records.status_record(st))


# -- operator operations --------------------------------------------------------------------


def kick(svc: Service, a: Args, who: Caller) -> dict[str, Any]:
    with svc.transaction() as tx:
        kicked = _sessions_of(tx, a["target"], svc.cfg.network.lan_prefix)
        for s in kicked:
            sessions.end(tx, s, svc.now(), sessions.EndCause.KICKED)
            audit.record(tx, svc.now(), who.actor, "session.kick", s.mac)
        ips = [s.ip for s in kicked]
    svc.reconcile()
    return {"kicked": ips}


def _sessions_of(tx: DB, target: str, prefix: Any) -> Sequence[Session]:
    """Open sessions of an address, a MAC or a voucher code, as an operator names them."""
    with contextlib.suppress(ValueError):
        ip = IPv4Address(target)
        if ip not in prefix:
            raise InvalidInput(f"{ip} is not on the hotspot's network")
        return queries.open_at(tx, ip) or _none(f"nobody is logged in at {ip}")
    with contextlib.suppress(ValueError):
        mac = normalize_mac(target)
        return queries.open_of_device(tx, mac) or _none(f"{mac} is not logged in")
    voucher = vouchers.find(tx, target)
    found = queries.open_on_voucher(tx, voucher.id)
    return found or _none("no device is logged in with that voucher")


def _none(message: str) -> Sequence[Session]:
    raise NotFound(message)


def extend(svc: Service, a: Args, who: Caller) -> dict[str, Any]:
    with svc.transaction() as tx:
        v = sessions.extend(tx, code=a["code"], seconds=a["seconds"], data_bytes=a["bytes"],
                            actor=who.actor, now=svc.now())  # fmt: skip
        st = vouchers.standing_of(v, svc.now())
        answer = {
            "code": codes.display(v.code),
            "seconds_left": st.seconds_left,
            "data_left": st.data_left,
        }
    svc.reconcile()
    return answer


def _flag(flag: str, value: bool) -> Run:
    def run(svc: Service, a: Args, who: Caller) -> dict[str, Any]:
        with svc.transaction() as tx:
            sessions.set_flag(tx, mac=a["mac"], flag=flag, value=value, actor=who.actor,
                              now=svc.now(), note=a["note"])  # fmt: skip
        svc.reconcile()
        return {"mac": a["mac"], flag: value}

    return run


def revoke(svc: Service, a: Args, who: Caller) -> dict[str, Any]:
    """A lost or stolen card (`code`), or a batch's live cards (`batch`): revoked in one
    transaction, their devices cut, before the answer goes back."""
    if (a["code"] is None) == (a["batch"] == 0):
        raise InvalidInput("give 'code' or 'batch'")
    with svc.transaction() as tx:
        if a["code"] is not None:
            revoked = [vouchers.revoke(tx, a["code"], actor=who.actor, now=svc.now())]
        else:
            revoked = vouchers.revoke_batch(tx, a["batch"], actor=who.actor, now=svc.now())
        shown = [codes.display(v.code) for v in revoked]
    ended = svc.enforce()  # ends their sessions and takes them out of the kernel
    cut = sorted(s.ip for s, _ in ended)
    if a["code"] is not None:
        return {"code": shown[0], "cut": cut}
    return {"codes": shown, "cut": cut}


def plan_edit(svc: Service, a: Args, who: Caller) -> dict[str, Any]:
    """Change a plan's terms; sessions on it get the new speed and limits at once."""
    changes, new_name = a["changes"], a["new_name"]
    if not changes and new_name is None:
        raise InvalidInput("nothing to change: give at least one term", reason="nothing_to_add")
    with svc.transaction() as tx:
        name = plans.edit(tx, a["name"], changes, new_name, actor=who.actor, now=svc.now()).name
    svc.enforce()  # a shorter limit may have run out already
    svc.reconcile()  # new rates for the sessions on it
    return {"name": name}


def reconcile_now(svc: Service, a: Args, who: Caller) -> dict[str, Any]:
    plan = svc.reconcile()
    return {
        "authorized": len(plan.firewall.authorize),
        "deauthorized": len(plan.firewall.deauthorize),
        "shaped": len(plan.shaper.set),
        "unshaped": len(plan.shaper.remove),
    }


_LAN_IP = LanAddress()
_CODE = Text(40)
_DEVICE = {"mac": Mac(), "note": Text(200, required=False)}  # the note: whose, or why
_EXTRA_TIME = Integer(0, 366 * 86400)
_EXTRA_DATA = Integer(0, 10**13)
_TERM = OptionalInteger(1, 10**13)  # null removes a limit; plans.PlanTerms checks the rest
_PLAN_CHANGES = Changes(
    {
        "price_rp": Integer(0, 10**12),
        **dict.fromkeys(
            ("validity_s", "time_s", "data_bytes", "down_bps", "up_bps", "devices", "idle_s"),
            _TERM,
        ),
    }
)

RES, OPR = Role.RESIDENT, Role.OPERATOR

OPS: Mapping[str, Op] = {
    "login": Op({"ip": _LAN_IP, "code": Text(40, required=False), "free": Flag()}, RES, log_in),
    "wrong_code": Op({"ip": _LAN_IP}, RES, wrong_code),
    "topup": Op({"ip": _LAN_IP, "code": _CODE}, RES, topup),
    "logout": Op({"ip": _LAN_IP}, RES, log_out),
    "status": Op({"ip": _LAN_IP}, RES, status),
    "online": Op(online.PARAMS, OPR, online.run),
    "kick": Op({"target": _CODE}, OPR, kick),
    "extend": Op(
        {"code": _CODE, "seconds": Integer(0, 366 * 86400), "bytes": Integer(0, 10**13)},
        OPR,
        extend,
    ),
    "trust": Op(_DEVICE, OPR, _flag("trusted", True)),
    "untrust": Op(_DEVICE, OPR, _flag("trusted", False)),
    "block": Op(_DEVICE, OPR, _flag("blocked", True)),
    "unblock": Op(_DEVICE, OPR, _flag("blocked", False)),
    "revoke": Op({"code": Text(40, required=False), "batch": Integer(0, 2**31 - 1)}, OPR, revoke),
    "plan_edit": Op(
        {"name": Text(64), "new_name": Text(64, required=False), "changes": _PLAN_CHANGES},
        OPR,
        plan_edit,
    ),
    "reconcile": Op({}, OPR, reconcile_now),
    "settings_set": Op(admin.SETTINGS_PARAMS, OPR, admin.settings_set),
    "backup_now": Op({}, OPR, admin.backup_now),
}


def operations(role: Role) -> list[str]:
    """The names a caller in this role may ask for."""
    return sorted(name for name, op in OPS.items() if op.role is role)
