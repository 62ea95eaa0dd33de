"""Which LAN addresses are logged in: the question almost every portal request asks.

After a power cut 200 phones ask it at once, so it must not cost a query each time. The set of
addresses with an open session is kept in memory and read again only when the database has
changed: with SQLite, `PRAGMA data_version` on one held connection tells (a few microseconds,
and exact: it moves whenever any other connection — the daemon's — commits); with another
database, at most once per `ttl_s`. The portal also forgets the set itself whenever it has asked
the daemon for a change.

Under a burst even the version check adds up (it takes the database's shared lock), so it is
made at most every `recheck_s` (50 ms): a change made by another process — an operator's kick,
an expiry — shows here within that, a login or logout this portal asked for at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from hotspotd.core import queries


class OnlineAddresses:
    def __init__(
        self,
        engine: Engine,
        ttl_s: float = 1.0,
        recheck_s: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._ttl_s = ttl_s
        self._recheck_s = recheck_s
        self._clock = clock
        self._checked = -recheck_s  # when the stamp was last compared
        self._sqlite = engine.dialect.name == "sqlite" and engine.url.database not in (
            None,
            "",
            ":memory:",
        )
        self._lock = threading.Lock()
        self._ips: frozenset[str] = frozenset()
        self._stamp: object = None  # the data_version (or the time) the set was read at
        self._watch: Any = None  # the held DB-API connection that reads data_version

    def __contains__(self, ip: object) -> bool:
        return str(ip) in self.addresses()

    def addresses(self) -> frozenset[str]:
        if self._stamp is not None and self._clock() - self._checked < self._recheck_s:
            return self._ips  # checked a moment ago (reading two attributes needs no lock)
        with self._lock:
            self._checked = self._clock()
            stamp = self._current_stamp()
            if stamp is None or stamp != self._stamp:
                with self._engine.connect() as conn:
                    self._ips = queries.open_addresses(conn)
                self._stamp = stamp
            return self._ips

    def version(self) -> object:
        """What the set was last read at: it moves whenever the database may have changed
        (None: unknown). Other things kept per database state (the settings) key on it."""
        self.addresses()
        return self._stamp

    def forget(self) -> None:
        """The database changed in a way this process knows of: read it again next time."""
        with self._lock:
            self._stamp = None

    def close(self) -> None:
        with self._lock:
            if self._watch is not None:
                self._watch.close()
                self._watch = None

    def _current_stamp(self) -> object:
        if not self._sqlite:
            now = self._clock()
            if isinstance(self._stamp, float) and now - self._stamp < self._ttl_s:
                return self._stamp
            return now
        try:
            if self._watch is None:
                self._watch = self._engine.raw_connection()
            cursor = self._watch.cursor()
            try:
                cursor.execute("PRAGMA data_version")
                (version,) = cursor.fetchone()
            finally:
                cursor.close()
            return ("v", version)
        except Exception:
            # a broken watch connection: drop it and read the set now (never a stale answer)
            if self._watch is not None:
                try:
                    self._watch.close()
                finally:
                    self._watch = None
            return None
