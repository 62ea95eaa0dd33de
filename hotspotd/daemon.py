"""hotspotd: the root daemon. Keeps the kernel in step with the database, and answers the socket.

At start it refuses an unmigrated database, ends sessions that ran out while it was down and
rebuilds the kernel table from the database *before* it serves anything. Then APScheduler runs
the counter poll (with enforcement right after it), a periodic full reconcile, the hourly and
daily roll-ups and the nightly backup. SIGTERM stops it and leaves authorized devices
forwarding, so a restart never cuts a paid user; `hotspotd --flush` removes our table and
classes on purpose.

Every job and every control operation runs under one lock: the kernel adapters and the SQLite
writer are used by one thread at a time, and each job's work is one transaction.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from ipaddress import IPv4Address
from typing import Any, TypeVar

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session as DB

from hotspotd import config as config_mod
from hotspotd import schema
from hotspotd.clock import OsClock, SystemClock, Timekeeper
from hotspotd.control import ControlError, ControlServer, Peer
from hotspotd.core import (
    audit,
    codes,
    db,
    desired,
    enforcement,
    login,
    metering,
    queries,
    reconcile,
    sessions,
    usage,
    vouchers,
)
from hotspotd.core.models import Device, Session
from hotspotd.core.ports import Firewall, Rate, Shaper, normalize_mac
from hotspotd.core.throttle import GuessThrottle
from hotspotd.errors import (
    AdapterError,
    ClientError,
    HotspotError,
    InvalidInput,
    NotFound,
    VoucherRejected,
    VoucherTypo,
)
from hotspotd.instance import hold_instance_lock

log = logging.getLogger("hotspotd")
T = TypeVar("T")

OPERATOR_OPS = frozenset(
    {"kick", "extend", "trust", "untrust", "block", "unblock", "reconcile", "online"}
)


class NoMac(ClientError):
    status = 409
    code = "no_mac"
    reason = "no_mac"


@dataclass
class Throughput:
    """A session's current rates, from the last two polls."""

    down_bps: int = 0
    up_bps: int = 0


MacOf = Callable[[IPv4Address], "str | None"]
Presence = Callable[[IPv4Address, str], bool]  # does this MAC still answer for this address?


class Hotspotd:
    def __init__(
        self,
        cfg: config_mod.Config,
        engine: Engine,
        firewall: Firewall,
        shaper: Shaper,
        mac_of: MacOf,
        clock: OsClock | None = None,
        present: Presence | None = None,
    ) -> None:
        self.cfg = cfg
        self.engine = engine
        self.sessionmaker = db.make_sessionmaker(engine)
        self.firewall = firewall
        self.shaper = shaper
        self.mac_of = mac_of
        self.tz = cfg.village.tz
        # The daemon's time: the system clock where it is set, a provisional one until then;
        # published beside the socket so the portal and hotspotctl tell the same time.
        self.clock = Timekeeper(clock or SystemClock(), self.tz, cfg.daemon.clock_file)
        self.lock = threading.RLock()
        self.policy = sessions.FreePolicy.from_config(cfg.free)
        self.garden = frozenset({cfg.portal.address})
        self.started_at: datetime | None = None
        self.charged_to: float | None = None  # monotonic time the online seconds are charged to
        self.on_clock_jump: Callable[[], None] | None = None  # serve() reschedules the jobs
        self.counter_failures = 0  # counter reads that failed since start
        self.counters_failing = False
        self.present = present
        self.away_misses: dict[int, int] = {}  # session id -> presence checks unanswered
        self.away_asked: dict[int, float] = {}  # session id -> when last asked (monotonic)
        self.throughput: dict[int, Throughput] = {}
        # MAC -> (DHCP hostname, vendor), waiting to be written. Devices online now have a
        # place each; any other MAC shares a bounded few, the oldest dropped first, so a flood
        # of made-up MACs can push out only its own.
        self.names: OrderedDict[str, tuple[str | None, str | None]] = OrderedDict()
        self.names_online: dict[str, tuple[str | None, str | None]] = {}
        self.online_macs: frozenset[str] = frozenset()  # as of the last reconcile
        self.names_lock = threading.Lock()
        # Wrong codes per device and overall. Here, not in the portal: this one process sees
        # every code of every portal worker, so the count cannot be split or reset by them.
        self.guesses = GuessThrottle()

    # -- transactions -----------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[DB]:
        with self.sessionmaker.begin() as session:
            yield session

    # -- start and jobs ---------------------------------------------------------------------

    def start(self) -> reconcile.Plan:
        """Refuse an old schema, end what ran out while down, rebuild the kernel from the DB."""
        schema.require_current(self.engine)
        with self.lock:
            self.firewall.setup()
            self.shaper.setup(
                Rate(self.cfg.network.uplink_down_bps, self.cfg.network.uplink_up_bps)
            )
            with self.transaction() as tx:
                self.clock.begin(tx)
                now = self.started_at = self.clock.now()
                self.charged_to = self.clock.monotonic()
                if not self.clock.synced:
                    # Idle is measured on this start's time: a session from before the power
                    # cut gets its idle limit counted from now, not from a clock that is wrong.
                    since = self.clock.unsynced_since
                    for s in queries.open_sessions(tx):
                        if since is not None and s.last_activity_at < since:
                            s.last_activity_at = now
                for s, reason in self._enforce(tx, now):
                    log.info(
                        "session %s (%s) ended while the daemon was down: %s", s.id, s.ip, reason
                    )
            plan = self.reconcile()
            if self.cfg.network.manage_forwarding:
                set_forwarding(True)
            log.info(
                "kernel rebuilt from the database: +%d devices, -%d",
                len(plan.firewall.authorize),
                len(plan.firewall.deauthorize),
            )
            return plan

    def reconcile(self) -> reconcile.Plan:
        """Make the kernel hold what the database says; new kernel entries count from zero."""
        with self.lock:
            with self.transaction() as tx:
                want = desired.state(tx, garden=self.garden, policy=self.policy)
            self.online_macs = frozenset(key.mac for key in want.authorized)
            plan = reconcile.reconcile(self.firewall, self.shaper, want)
            if plan.firewall.authorize:
                with self.transaction() as tx:
                    metering.rebaseline(tx, plan.firewall.authorize)
            return plan

    def poll(self) -> metering.ChargeReport:
        """Read every device's counters once and write them in one transaction.

        Online seconds are counted on the monotonic clock, so a jump of the wall clock (NTP
        after a boot in 1970, or a step backwards) charges neither hours nor nothing.
        """
        with self.lock:
            try:
                counters = self.firewall.counters()
                if self.counters_failing:
                    log.info("the kernel's counters read again")
                    self.counters_failing = False
            except Exception:
                # Time still passes and limits still hold: charge the seconds on the counters
                # last read (no new bytes), and let enforcement run all the same.
                self.counter_failures += 1
                self.counters_failing = True
                if self.counter_failures == 1:
                    log.exception("reading the kernel's counters failed; charging time only")
                elif self.counter_failures % 60 == 0:  # every ten minutes at the default poll
                    log.error("reading the kernel's counters failed %d times so far",
                              self.counter_failures)  # fmt: skip
                counters = {}
            mono = self.clock.monotonic()
            if self.charged_to is None:
                self.charged_to = mono
            elapsed_s = max(0, int(mono - self.charged_to))
            self.charged_to += elapsed_s  # the fraction left over counts at the next poll
            with self.transaction() as tx:
                correction = self.clock.observe(tx)
                now = self.clock.now()
                enforcement.split_at_midnight(tx, now, self.tz)
                before = {s.id: (s.bytes_up, s.bytes_down) for s in queries.open_sessions(tx)}
                report = metering.charge(tx, counters, now, elapsed_s)
                self.throughput = {}
                for s in queries.open_sessions(tx):
                    up0, down0 = before.get(s.id, (s.bytes_up, s.bytes_down))
                    if elapsed_s > 0:
                        self.throughput[s.id] = Throughput(
                            down_bps=(s.bytes_down - down0) * 8 // elapsed_s,
                            up_bps=(s.bytes_up - up0) * 8 // elapsed_s,
                        )
            if correction is not None and self.on_clock_jump is not None:
                self.on_clock_jump()
            return report

    def enforce(self) -> list[tuple[Session, str]]:
        """End sessions out of time, data, validity or idle, and take them out of the kernel."""
        with self.lock:
            with self.transaction() as tx:
                ended = self._enforce(tx, self.clock.now())
                for s, reason in ended:
                    log.info("session %s (%s %s) ended: %s", s.id, s.ip, s.mac, reason)
            if ended:
                self.reconcile()
            return ended

    def _enforce(self, tx: DB, now: datetime) -> list[tuple[Session, str]]:
        return enforcement.enforce(
            tx, now, policy=self.policy, tz=self.tz, provisional_since=self.clock.unsynced_since
        )

    def tick(self) -> None:
        """The poll job: counters, then enforcement on the fresh figures.

        Enforcement runs even when the poll failed: a broken counter read or database write
        must never turn off the limits of time, data, validity and idle.
        """
        try:
            self.poll()
        finally:
            self.enforce()
        self.write_names()

    def check_presence(self) -> list[int]:
        """Ask the phones quiet for `away_after` whether they are still there.

        A session whose phone misses two checks in a row ends ("left"): a phone that went
        away without logging out leaves no open session that a laptop cloning its MAC and
        address could ride. The ARP probes (up to half a second each, a bounded few per run)
        go out without the daemon's lock held; only the ending takes it.
        """
        away = self.cfg.daemon.away_after_s
        if away is None or self.present is None:
            return []
        with self.lock, self.transaction() as tx:
            now = self.clock.now()
            quiet = [
                (s.id, IPv4Address(s.ip), s.mac, s.last_activity_at)
                for s in queries.open_sessions(tx)
                if (now - s.last_activity_at).total_seconds() >= away
            ]
        quiet_ids = {q[0] for q in quiet}
        self.away_misses = {k: v for k, v in self.away_misses.items() if k in quiet_ids}
        self.away_asked = {k: v for k, v in self.away_asked.items() if k in quiet_ids}
        quiet.sort(key=lambda q: self.away_asked.get(q[0], -1.0))  # the longest unasked first
        gone: dict[int, datetime] = {}
        for session_id, ip, mac, last in quiet[:MAX_PRESENCE_PROBES]:
            self.away_asked[session_id] = self.clock.monotonic()
            try:
                here = self.present(ip, mac)
            except AdapterError as exc:
                log.warning("presence check of %s failed: %s", ip, exc)
                continue
            if here:
                self.away_misses.pop(session_id, None)
                continue
            self.away_misses[session_id] = self.away_misses.get(session_id, 0) + 1
            if self.away_misses[session_id] >= AWAY_MISSES:
                gone[session_id] = last
        if not gone:
            return []
        ended = []
        with self.lock:
            with self.transaction() as tx:
                for session_id, last in gone.items():
                    s = tx.get(Session, session_id)
                    # not if it came back meanwhile (traffic moved its last activity)
                    if s is not None and s.ended_at is None and s.last_activity_at == last:
                        sessions.end(tx, s, self.clock.now(), sessions.EndCause.LEFT)
                        log.info("session %s (%s %s) ended: the phone left", s.id, s.ip, s.mac)
                        ended.append(session_id)
                    self.away_misses.pop(session_id, None)
            if ended:
                self.reconcile()
        return ended

    def rollup(self) -> tuple[int, int, int]:
        with self.lock, self.transaction() as tx:
            now = self.clock.now()
            hours = usage.rollup_hours(tx, now)
            days = usage.rollup_days(tx, now, self.tz)
            pruned = usage.prune_samples(tx, now, keep_since=self.clock.unsynced_since)
            return hours, days, pruned

    def on_dhcp(self, mac: str, hostname: str | None, vendor: str | None) -> None:
        """From the sniffer thread: remember (a bounded few), written after the next poll."""
        with self.names_lock:
            if mac in self.online_macs:
                self.names_online[mac] = (hostname, vendor)
                return
            self.names[mac] = (hostname, vendor)
            self.names.move_to_end(mac)
            while len(self.names) > MAX_PENDING_NAMES:
                self.names.popitem(last=False)

    def write_names(self) -> int:
        """Name the devices the database knows (they logged in, or were trusted or blocked).

        Outside the daemon's lock, in one transaction with one query per 500 MACs: a phone
        that floods DHCP requests with made-up MACs can neither stall the poll nor grow the
        device table. A MAC not known yet stays pending (bounded) until it logs in.
        """
        with self.names_lock:
            pending = {**self.names, **self.names_online}
            self.names_online = {}
        if not pending:
            return 0
        written: list[str] = []
        with self.transaction() as tx:
            macs = list(pending)
            for i in range(0, len(macs), 500):
                for device in tx.scalars(select(Device).where(Device.mac.in_(macs[i : i + 500]))):
                    hostname, vendor = pending[device.mac]
                    device.hostname = hostname or device.hostname
                    device.vendor_class = vendor or device.vendor_class
                    written.append(device.mac)
        with self.names_lock:
            for mac in written:
                if self.names.get(mac) == pending[mac]:
                    del self.names[mac]
        return len(written)

    # -- control operations -----------------------------------------------------------------

    def handle(self, op: str, params: Mapping[str, Any], peer: Peer) -> Any:
        method = getattr(self, f"op_{op}", None)
        if method is None:
            raise UnknownOp(f"unknown operation {op!r}")
        if op in OPERATOR_OPS:
            log.info("operator %s asked %s %s", peer, op, _loggable(params))
        with self.lock:
            return method(Params(params), peer)

    def op_login(self, p: Params, peer: Peer) -> dict[str, Any]:
        ip = p.ip("ip", self.cfg.network.lan_prefix)
        free = p.flag("free")
        code = p.text("code", required=not free, limit=40)
        p.done()
        mac = self._mac_of(ip)
        now = self.clock.now()
        with self.transaction() as tx:  # written and committed before the kernel is touched
            if free:
                result = login.login_free(
                    tx, ip=ip, mac=mac, now=now, policy=self.policy, tz=self.tz
                )
            else:
                assert code is not None
                result = self._code_attempt(
                    tx,
                    ip,
                    lambda: login.login_voucher(tx, ip=ip, mac=mac, code=code, now=now),
                )
            session_id = result.session.id
        self.reconcile()
        log.info("login %s %s session %s%s", ip, mac, session_id, " (free)" if free else "")
        return self._status(ip, mac)

    def _code_attempt(self, tx: DB, ip: IPv4Address, attempt: Callable[[], T]) -> T:
        """Try a typed code unless this device guessed wrong too often.

        While the hotspot as a whole is being guessed at, a wrong code is answered "wait", but
        a valid one goes through and is written to the audit log: a hit then is rare enough to
        look at, and the typos of others must never lock a resident with a good card out.
        """
        device = self.mac_of(ip) or str(ip)
        now = self.clock.monotonic()
        self._refuse_if_throttled(device, now)
        guessing = self.guesses.guessing(now)
        try:
            result = attempt()
        except sessions.NotLoggedIn:
            raise
        except (VoucherTypo, VoucherRejected, NotFound):  # NotFound: no voucher has that code
            self.guesses.miss(device, now)
            if guessing:
                raise _throttled(guessing) from None
            raise
        if guessing:
            log.warning("a code from %s (%s) was good while the hotspot is being guessed at",
                        ip, device)  # fmt: skip
            audit.record(
                tx, self.clock.now(), "resident", "voucher.guess_window",
                device, f"a good code from {ip} while guessing went on",
            )  # fmt: skip
        return result

    def _refuse_if_throttled(self, device: str, now: float) -> None:
        wait = self.guesses.retry_after(device, now)
        if wait:
            raise _throttled(wait)

    def op_wrong_code(self, p: Params, peer: Peer) -> dict[str, Any]:
        """The portal caught a typo itself (no daemon needed for that): count it here too."""
        ip = p.ip("ip", self.cfg.network.lan_prefix)
        p.done()
        device = self.mac_of(ip) or str(ip)
        now = self.clock.monotonic()
        self._refuse_if_throttled(device, now)
        self.guesses.miss(device, now)
        return {"misses": self.guesses.misses(device, now)}

    def op_topup(self, p: Params, peer: Peer) -> dict[str, Any]:
        """A logged-in resident adds another card's time and data to the voucher in use."""
        ip = p.ip("ip", self.cfg.network.lan_prefix)
        code = p.text("code", required=True, limit=40)
        p.done()
        assert code is not None
        mac = self._mac_of(ip)
        now = self.clock.now()
        with self.transaction() as tx:

            def attempt() -> login.TopUp | login.LoginResult:
                try:
                    return login.top_up(tx, ip=ip, code=code, now=now, mac=mac)
                except sessions.WiderCard:
                    # An unlimited card adds nothing onto a limited one: the phone goes on with
                    # the new card, and the old one keeps what is left of it for later.
                    return login.login_voucher(tx, ip=ip, mac=mac, code=code, now=now)

            result = self._code_attempt(tx, ip, attempt)
            if isinstance(result, login.TopUp):
                log.info("top-up at %s: +%ss +%sB onto voucher %s", ip, result.seconds,
                         result.data_bytes, result.voucher.id)  # fmt: skip
            else:
                log.info("top-up at %s: switched to the wider card %s", ip, result.session.id)
        self.reconcile()
        return {**self._status(ip, mac), "switched": not isinstance(result, login.TopUp)}

    def op_logout(self, p: Params, peer: Peer) -> dict[str, Any]:
        ip = p.ip("ip", self.cfg.network.lan_prefix)
        p.done()
        mac = self._mac_of(ip)
        with self.transaction() as tx:
            login.logout(tx, ip=ip, mac=mac, now=self.clock.now())
        self.reconcile()
        return {"ip": str(ip), "logged_out": True}

    def op_status(self, p: Params, peer: Peer) -> dict[str, Any]:
        ip = p.ip("ip", self.cfg.network.lan_prefix)
        p.done()
        return self._status(ip, self._mac_of(ip))

    def _mac_of(self, ip: IPv4Address) -> str:
        """The MAC the neighbour table gives for this address: what a device is, as at login."""
        mac = self.mac_of(ip)
        if mac is None:
            raise NoMac("this device's MAC address is not known yet; try again in a moment")
        return mac

    def _status(self, ip: IPv4Address, mac: str | None = None) -> dict[str, Any]:
        with self.transaction() as tx:
            st = sessions.status(
                tx, ip=ip, now=self.clock.now(), policy=self.policy, tz=self.tz, mac=mac
            )
            s = st.session
            return {
                "ip": s.ip,
                "mac": s.mac,
                "kind": s.kind.value,
                "plan": st.plan,
                "code": codes.display(s.voucher.code) if s.voucher else None,
                "seconds_left": st.seconds_left,
                "data_left": st.data_left,
                "valid_until": st.valid_until.isoformat() if st.valid_until else None,
                "devices": st.devices,
                "started_at": s.started_at.isoformat(),
                "bytes_up": s.bytes_up,
                "bytes_down": s.bytes_down,
            }

    def op_online(self, p: Params, peer: Peer) -> list[dict[str, Any]]:
        p.done()
        now = self.clock.now()
        out = []
        with self.transaction() as tx:
            for s in queries.open_sessions(tx):
                rate = self.throughput.get(s.id, Throughput())
                left = vouchers.standing_of(s.voucher, now) if s.voucher is not None else None
                out.append(
                    {
                        "ip": s.ip,
                        "mac": s.mac,
                        "hostname": s.device.hostname,
                        "kind": s.kind.value,
                        "plan": s.voucher.plan.name if s.voucher else "free",
                        "code": codes.display(s.voucher.code) if s.voucher else None,
                        "started_at": s.started_at.isoformat(),
                        "idle_s": int((now - s.last_activity_at).total_seconds()),
                        "bytes_up": s.bytes_up,
                        "bytes_down": s.bytes_down,
                        "down_bps": rate.down_bps,
                        "up_bps": rate.up_bps,
                        "seconds_left": left.seconds_left if left else None,
                        "data_left": left.data_left if left else None,
                    }
                )
        return out

    def op_kick(self, p: Params, peer: Peer) -> dict[str, Any]:
        target = p.text("target", required=True, limit=40)
        p.done()
        assert target is not None
        with self.transaction() as tx:
            kicked = _sessions_of(tx, target, self.cfg.network.lan_prefix)
            for s in kicked:
                sessions.end(tx, s, self.clock.now(), sessions.EndCause.KICKED)
                audit.record(tx, self.clock.now(), str(peer), "session.kick", s.mac)
            ips = [s.ip for s in kicked]
        self.reconcile()
        return {"kicked": ips}

    def op_extend(self, p: Params, peer: Peer) -> dict[str, Any]:
        code = p.text("code", required=True, limit=40)
        seconds = p.integer("seconds", minimum=0, maximum=366 * 86400)
        data = p.integer("bytes", minimum=0, maximum=10**13)
        p.done()
        assert code is not None
        with self.transaction() as tx:
            v = sessions.extend(
                tx,
                code=code,
                seconds=seconds,
                data_bytes=data,
                actor=str(peer),
                now=self.clock.now(),
            )
            st = vouchers.standing_of(v, self.clock.now())
            answer = {
                "code": codes.display(v.code),
                "seconds_left": st.seconds_left,
                "data_left": st.data_left,
            }
        self.reconcile()
        return answer

    def _flag(self, p: Params, peer: Peer, flag: str, value: bool) -> dict[str, Any]:
        mac = p.mac("mac")
        p.done()
        with self.transaction() as tx:
            sessions.set_flag(
                tx, mac=mac, flag=flag, value=value, actor=str(peer), now=self.clock.now()
            )
        self.reconcile()
        return {"mac": mac, flag: value}

    def op_trust(self, p: Params, peer: Peer) -> dict[str, Any]:
        return self._flag(p, peer, "trusted", True)

    def op_untrust(self, p: Params, peer: Peer) -> dict[str, Any]:
        return self._flag(p, peer, "trusted", False)

    def op_block(self, p: Params, peer: Peer) -> dict[str, Any]:
        return self._flag(p, peer, "blocked", True)

    def op_unblock(self, p: Params, peer: Peer) -> dict[str, Any]:
        return self._flag(p, peer, "blocked", False)

    def op_reconcile(self, p: Params, peer: Peer) -> dict[str, Any]:
        p.done()
        plan = self.reconcile()
        return {
            "authorized": len(plan.firewall.authorize),
            "deauthorized": len(plan.firewall.deauthorize),
            "shaped": len(plan.shaper.set),
            "unshaped": len(plan.shaper.remove),
        }


def _throttled(wait: int) -> ControlError:
    return ControlError(
        "throttled",
        f"too many wrong codes; try again in {wait} seconds",
        {"retry_after": wait},
        reason="too_many_wrong",
    )


MAX_PENDING_NAMES = 2048  # DHCP names waiting for their device to log in
MAX_PRESENCE_PROBES = 16  # ARP probes per presence check (30 s apart)
AWAY_MISSES = 2  # unanswered checks in a row before a session ends as "left"


class UnknownOp(ClientError):
    status = 400
    code = "unknown_op"
    reason = "unknown_op"


class Params:
    """Validates one request's parameters; anything left over is refused by `done()`."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = dict(raw)
        self.used: set[str] = set()

    def _get(self, name: str) -> Any:
        self.used.add(name)
        return self.raw.get(name)

    def text(self, name: str, *, required: bool, limit: int) -> str | None:
        value = self._get(name)
        if value is None:
            if required:
                raise InvalidInput(f"'{name}' is required")
            return None
        if not isinstance(value, str) or len(value) > limit:
            raise InvalidInput(f"'{name}' must be text of at most {limit} characters")
        return value

    def flag(self, name: str) -> bool:
        value = self._get(name)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise InvalidInput(f"'{name}' must be true or false")
        return value

    def integer(self, name: str, *, minimum: int, maximum: int) -> int:
        value = self._get(name)
        if value is None:
            return 0
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            raise InvalidInput(f"'{name}' must be a whole number from {minimum} to {maximum}")
        return value

    def ip(self, name: str, prefix: Any) -> IPv4Address:
        value = self.text(name, required=True, limit=15)
        try:
            ip = IPv4Address(value)
        except ValueError:
            raise InvalidInput(f"'{name}' is not an IPv4 address") from None
        if ip not in prefix:
            raise InvalidInput(f"'{name}' {ip} is not on the hotspot's network")
        return ip

    def mac(self, name: str) -> str:
        value = self.text(name, required=True, limit=17)
        try:
            return normalize_mac(value or "")
        except ValueError:
            raise InvalidInput(f"'{name}' is not a MAC address") from None

    def done(self) -> None:
        extra = sorted(set(self.raw) - self.used)
        if extra:
            raise InvalidInput(f"unexpected parameter(s): {', '.join(extra)}")


def _sessions_of(tx: DB, target: str, prefix: Any) -> list[Session]:
    """Open sessions of an address, a MAC or a voucher code."""
    with contextlib.suppress(ValueError):
        ip = IPv4Address(target)
        if ip not in prefix:
            raise InvalidInput(f"{ip} is not on the hotspot's network")
        found = list(queries.open_at(tx, ip))
        if not found:
            raise NotFound(f"nobody is logged in at {ip}")
        return found
    with contextlib.suppress(ValueError):
        mac = normalize_mac(target)
        found = list(queries.open_of_device(tx, mac))
        if not found:
            raise NotFound(f"{mac} is not logged in")
        return found
    voucher = vouchers.find(tx, target)
    found = list(queries.open_on_voucher(tx, voucher.id))
    if not found:
        raise NotFound("no device is logged in with that voucher")
    return found


def _loggable(params: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={str(v)[:40]!r}" for k, v in sorted(params.items()))


# -- running it -------------------------------------------------------------------------------


def interval_jobs(daemon: Hotspotd) -> list[tuple[str, Callable[[], None], float]]:
    """The poll and the periodic reconcile, run by a `Ticker` on the monotonic clock."""
    return [
        ("poll", _guarded("poll", daemon.tick), float(daemon.cfg.daemon.poll_interval_s)),
        ("reconcile", _guarded("reconcile", daemon.reconcile), 60.0),
        ("presence", _guarded("presence", daemon.check_presence), 30.0),
    ]


def schedule(daemon: Hotspotd, scheduler: Any) -> None:
    """The jobs at times of the village's day (APScheduler, on the wall clock).

    Each catches and logs its own failure: one bad run ends nothing. When the clock jumps,
    `serve` reschedules them from the new time.
    """
    from apscheduler.triggers.cron import CronTrigger

    jobs: list[tuple[str, Callable[[], object], Any]] = [
        ("rollup", daemon.rollup, CronTrigger(minute=5, timezone=daemon.tz)),
    ]
    backup_job = _backup_job(daemon)
    if backup_job is not None:
        jobs.append(("backup", backup_job, CronTrigger(hour=3, minute=17, timezone=daemon.tz)))
    for name, func, trigger in jobs:
        scheduler.add_job(
            _guarded(name, func),
            trigger,
            id=name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=30,
        )


def reschedule_after_a_jump(scheduler: Any) -> None:
    """Next run times were reckoned on the old clock: a step back would hold them for hours."""
    for job in scheduler.get_jobs():
        job.reschedule(job.trigger)


class Ticker:
    """Runs jobs every so many seconds on the monotonic clock, so no wall-clock jump (a step
    back by NTP) can hold the poll; a late job runs once, not once per missed turn."""

    def __init__(
        self,
        jobs: Sequence[tuple[str, Callable[[], None], float]],
        monotonic: Callable[[], float],
    ) -> None:
        self.jobs = list(jobs)
        self.monotonic = monotonic
        self.thread: threading.Thread | None = None

    def run(self, stop: threading.Event) -> None:
        start = self.monotonic()
        due = {name: start + every for name, _f, every in self.jobs}
        while not stop.is_set():
            now = self.monotonic()
            for name, func, every in self.jobs:
                if due[name] <= now:
                    func()
                    due[name] = max(due[name] + every, self.monotonic())
            stop.wait(max(0.0, min(due.values()) - self.monotonic()))

    def start(self, stop: threading.Event) -> None:
        self.thread = threading.Thread(target=self.run, args=(stop,), name="ticker", daemon=True)
        self.thread.start()

    def join(self) -> None:
        if self.thread is not None:
            self.thread.join()


def _guarded(name: str, func: Callable[[], object]) -> Callable[[], None]:
    def run() -> None:
        try:
            func()
        except Exception:
            log.exception("job %s failed; it runs again at its next time", name)

    run.__name__ = f"job_{name}"
    return run


def _backup_job(daemon: Hotspotd) -> Callable[[], object] | None:
    try:
        from hotspotd import backup
    except ImportError:
        return None
    rotate = getattr(backup, "nightly", None)
    if rotate is None:
        return None

    def run() -> object:
        return rotate(daemon.cfg, daemon.clock.now())

    return run


IP_FORWARD = "/proc/sys/net/ipv4/ip_forward"


def set_forwarding(on: bool) -> None:
    """Switch IPv4 forwarding of this network namespace; AdapterError if the kernel says no."""
    want = "1" if on else "0"
    try:
        with open(IP_FORWARD, "r+") as f:
            if f.read().strip() != want:
                f.seek(0)
                f.write(want)
                log.info("IPv4 forwarding %s", "on" if on else "off")
    except OSError as exc:
        raise AdapterError(f"cannot set {IP_FORWARD}: {exc.strerror}") from None


def uplink_for_masquerade(cfg: config_mod.Config) -> str | None:
    """The uplink to masquerade behind: wan_interface, else the default route's interface."""
    if not cfg.network.masquerade:
        return None
    wan = cfg.network.wan_interface or config_mod.detect_wan_interface()
    if wan is None or wan == cfg.network.lan_interface:
        log.warning(
            "no uplink to masquerade behind (set network.wan_interface; the default route "
            "is missing or on the LAN): phones' traffic leaves with their own addresses"
        )
        return None
    return wan


def build_adapters(cfg: config_mod.Config) -> tuple[Firewall, Shaper, MacOf]:
    from hotspotd.net.firewall import NftFirewall
    from hotspotd.net.shaper import TcShaper

    firewall = NftFirewall(
        lan_interface=cfg.network.lan_interface,
        portal_ip=cfg.portal.address,
        portal_port=cfg.portal.port,
        masquerade_interface=uplink_for_masquerade(cfg),
        # the router's own services a phone may reach: DHCP, DNS and the portal's ports
        local_tcp_ports=(cfg.portal.https_port,) if cfg.portal.https else (),
        garden_ports=cfg.network.garden_ports,
        garden_dns_timeout=cfg.network.garden_dns_timeout_s,
        local_destinations=cfg.network.local_destinations,
        operator_interface=cfg.network.operator_interface,
        operator_networks=cfg.network.operator_networks,
    )
    shaper = TcShaper(lan_interface=cfg.network.lan_interface, lan_prefix=cfg.network.lan_prefix)
    return firewall, shaper, _mac_lookup(cfg)


def _presence(cfg: config_mod.Config) -> Presence:
    from hotspotd.net import neighbours

    return neighbours.NeighbourTable(cfg.network.lan_interface).present


def _mac_lookup(cfg: config_mod.Config) -> MacOf:
    from hotspotd.net import neighbours

    finder = neighbours.NeighbourTable(cfg.network.lan_interface)

    def mac_of(ip: IPv4Address) -> str | None:
        return finder.mac_of(ip)

    return mac_of


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hotspotd", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="config file (default $HOTSPOT_CONFIG or /etc/hotspot)")
    parser.add_argument(
        "--flush", action="store_true", help="remove our nftables table and tc classes, then exit"
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping; authorized devices keep forwarding", signum)
        stop.set()

    # First thing: a SIGTERM during start-up still ends cleanly, after the kernel is rebuilt.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # APScheduler says "Running job ..." at INFO every poll: the journal would be nothing else.
    logging.getLogger("apscheduler").setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    try:
        cfg = config_mod.load(args.config)
        # One hotspotd at a time: a second one would take over the socket, and both would
        # charge online time. Held until this process ends, however it ends.
        instance_lock = hold_instance_lock(cfg.daemon.lock_file)  # noqa: F841 (kept open)
        firewall, shaper, mac_of = build_adapters(cfg)
        if args.flush:
            if cfg.network.manage_forwarding:
                set_forwarding(False)  # close the door before the table that guards it goes
            firewall.teardown()
            shaper.teardown()
            log.info("removed the hotspot table and shaping; every device is cut off")
            return 0
        engine = db.make_engine(cfg.database.url)
        daemon = Hotspotd(cfg, engine, firewall, shaper, mac_of, present=_presence(cfg))
        daemon.start()
    except HotspotError as exc:
        print(f"hotspotd: {exc}", file=sys.stderr)
        return 1
    return serve(daemon, stop)


def serve(daemon: Hotspotd, stop: threading.Event) -> int:
    from apscheduler.schedulers.background import BackgroundScheduler

    server = ControlServer(daemon.cfg.daemon.control_socket, daemon.handle)
    server.start()
    sniffer = None
    try:
        from hotspotd.net.dhcp_sniffer import DhcpSniffer

        sniffer = DhcpSniffer(
            daemon.cfg.network.lan_interface,
            lambda s: daemon.on_dhcp(s.mac, s.hostname, s.vendor_class),
        )
        sniffer.start()
    except ImportError:  # pragma: no cover - scapy is a dependency
        log.warning("scapy missing: no DHCP names")
    scheduler = BackgroundScheduler(timezone=daemon.tz)
    schedule(daemon, scheduler)
    scheduler.start()
    daemon.on_clock_jump = lambda: reschedule_after_a_jump(scheduler)
    ticker = Ticker(interval_jobs(daemon), daemon.clock.monotonic)
    ticker.start(stop)
    log.info("serving on %s", daemon.cfg.daemon.control_socket)
    stop.wait()
    ticker.join()
    scheduler.shutdown(wait=True)
    server.stop()
    if sniffer is not None:
        sniffer.stop()
    with daemon.lock:
        with contextlib.suppress(Exception):
            daemon.poll()  # the last counters, so a clean stop loses nothing
    for adapter in (daemon.firewall, daemon.shaper):
        close = getattr(adapter, "close", None)
        if close is not None:
            close()
    return 0


def run() -> None:
    sys.exit(main())
