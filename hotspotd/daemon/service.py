"""The daemon's service: the state it keeps and the work it does, each under one lock.

At start it refuses an unmigrated database, ends sessions that ran out while it was down and
rebuilds the kernel table from the database *before* it serves anything. The poll, enforcement,
the presence checks, the roll-ups and the DHCP names are its methods; `jobs` runs them on time
and `hotspotd.control.ops` answers the socket with them.

Every job and every control operation runs under one lock: the kernel adapters and the SQLite
writer are used by one thread at a time, and each job's work is one transaction.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from ipaddress import IPv4Address
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session as DB

from hotspotd import config as config_mod
from hotspotd import schema
from hotspotd.clock import OsClock, SystemClock, Timekeeper
from hotspotd.control import ops
from hotspotd.control.server import Peer
from hotspotd.core import (
    db,
    desired,
    enforcement,
    metering,
    queries,
    reconcile,
    sessions,
    settings,
    usage,
)
from hotspotd.core.models import Device, Session
from hotspotd.core.ports import Firewall, Rate, Shaper
from hotspotd.core.throttle import GuessThrottle
from hotspotd.errors import AdapterError
from hotspotd.net.forwarding import set_forwarding

log = logging.getLogger("hotspotd")

MAX_PENDING_NAMES = 2048  # DHCP names waiting for their device to log in
MAX_PRESENCE_PROBES = 16  # ARP probes per presence check (30 s apart)
AWAY_MISSES = 2  # unanswered checks in a row before a session ends as "left"


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
        # The free allowance and the names in force: the config's defaults under what an admin
        # set in the operator's UI, read at each decision (parsed again only when changed).
        self.settings = settings.Live(settings.Settings.defaults(cfg.village, cfg.free))
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
        self.access = ops.Access(cfg.daemon.operator_user)
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
                want = desired.state(tx, garden=self.garden, policy=self.free_policy(tx))
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
                online = enforcement.open_after_midnight(tx, now, self.tz)
                report = metering.charge(tx, counters, now, elapsed_s, online)
                self.throughput = {}
                if elapsed_s > 0:
                    for session_id, (up, down) in report.rises.items():
                        self.throughput[session_id] = Throughput(
                            down_bps=down * 8 // elapsed_s, up_bps=up * 8 // elapsed_s
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
            tx,
            now,
            policy=self.free_policy(tx),
            tz=self.tz,
            provisional_since=self.clock.unsynced_since,
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

    # -- what the control operations ask of it ----------------------------------------------

    def handle(self, op: str, params: Mapping[str, Any], peer: Peer) -> Any:
        """One control request: checked against the operations table, run under the lock."""
        return ops.handle(self, self.access, op, params, peer)

    def now(self) -> datetime:
        return self.clock.now()

    def free_policy(self, tx: DB) -> sessions.FreePolicy:
        """The free allowance in force now: the config's, or what an admin set since."""
        return self.settings.get(tx).free

    def monotonic(self) -> float:
        return self.clock.monotonic()

    def rates_of(self, session_id: int) -> tuple[int, int]:
        rate = self.throughput.get(session_id, Throughput())
        return rate.down_bps, rate.up_bps
