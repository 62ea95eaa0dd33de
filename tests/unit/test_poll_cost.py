"""What a poll and a login cost in SQL statements: the same with 10 devices online as with 40.

A village router polls 2,000 devices every ten seconds; a statement per device (a lazy load,
a flush, a query per free session) makes the poll slower than its interval. These count the
statements the daemon sends, so a per-device query shows up here long before on a router.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, func, select

from hotspotd import config
from hotspotd.control.server import Peer
from hotspotd.core import db as dbmod
from hotspotd.core import plans, vouchers
from hotspotd.core.models import Session, UsageSample
from hotspotd.core.plans import PlanTerms
from hotspotd.core.ports import DeviceKey
from hotspotd.daemon.service import Hotspotd
from tests.conftest import NOW
from tests.fakes import FakeClock, FakeFirewall, FakeShaper

ROOT = Peer(pid=1, uid=0, gid=0)
CARDS = 60


def phone(n: int) -> DeviceKey:
    return DeviceKey(IPv4Address(f"10.66.3.{n + 1}"), f"02:00:00:00:03:{n:02x}")


class Village:
    def __init__(self, cfg: config.Config, engine: Engine) -> None:
        self.engine = engine
        with dbmod.make_sessionmaker(engine).begin() as db:
            terms = PlanTerms(price_rp=5000, validity_s=86400, time_s=3600,
                              data_bytes=10**9, down_bps=2_000_000, up_bps=1_000_000,
                              devices=1, idle_s=900)  # fmt: skip
            plans.add(db, "Harian", terms, NOW)
            _, made = vouchers.make_batch(
                db, plan_name="Harian", count=CARDS, created_by="t", now=NOW
            )
            self.codes = [v.code for v in made]
        self.fw, self.clock = FakeFirewall(), FakeClock(NOW)
        self.macs = {phone(n).ip: phone(n).mac for n in range(2 * CARDS)}
        self.d = Hotspotd(cfg, engine, self.fw, FakeShaper(), self.macs.get, self.clock)
        self.d.start()
        self.online: list[DeviceKey] = []

    def log_in(self, n: int) -> None:
        """Every other phone on a card, the rest on the free allowance."""
        key = phone(n)
        if n % 2:
            params: dict[str, object] = {"ip": str(key.ip), "free": True}
        else:
            params = {"ip": str(key.ip), "code": self.codes[n // 2]}
        self.d.handle("login", params, ROOT)
        self.online.append(key)

    def tick(self) -> None:
        """Ten seconds of traffic on every phone, then the poll job."""
        for key in self.online:
            self.fw.add_traffic(key, up=1000, down=20_000)
        self.clock.advance(seconds=10)
        self.d.tick()


def statements(engine: Engine, action: Callable[[], object]) -> int:
    count = 0

    def seen(*_args: object) -> None:
        nonlocal count
        count += 1

    event.listen(engine, "before_cursor_execute", seen)
    try:
        action()
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    return count


@pytest.fixture
def village(config_file: Path, engine: Engine) -> Village:
    base = config.load(config_file)
    cfg = replace(
        base,
        free=replace(base.free, enabled=True),
        network=replace(base.network, manage_forwarding=False),
    )
    return Village(cfg, engine)


def test_a_poll_sends_as_many_statements_for_40_devices_as_for_10(village: Village) -> None:
    for n in range(10):
        village.log_in(n)
    village.tick()  # the first poll after the logins
    few = statements(village.engine, village.tick)
    for n in range(10, 40):
        village.log_in(n)
    village.tick()
    many = statements(village.engine, village.tick)
    assert many == few
    with dbmod.make_sessionmaker(village.engine)() as db:  # and every phone was charged
        sessions = db.scalars(select(Session).where(Session.ended_at.is_(None))).all()
        assert len(sessions) == 40
        assert all(s.bytes_up >= 1000 and s.bytes_down >= 20_000 for s in sessions)
        assert db.scalar(select(func.count()).select_from(UsageSample)) == 10 * 2 + 40 * 2


def test_a_login_sends_as_many_statements_with_40_online_as_with_10(village: Village) -> None:
    for n in range(10):
        village.log_in(n)
    few = [statements(village.engine, lambda n=n: village.log_in(n)) for n in (10, 11)]
    for n in range(12, 40):
        village.log_in(n)
    many = [statements(village.engine, lambda n=n: village.log_in(n)) for n in (40, 41)]
    assert many == few
