# ruff: noqa: F811  (pytest fixtures imported from test_daemon are used as parameters)
"""The router's clock: a board without a real-time clock, NTP's jump, midnight, one clock for all.

The daemon runs with in-memory kernel fakes on a `FakeClock` whose wall clock can jump (`step`)
while its monotonic clock goes on, and whose "synced" flag is what the machine would say.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, select

from hotspotd import clock as clock_mod
from hotspotd import config
from hotspotd.core import db as dbmod
from hotspotd.core import vouchers
from hotspotd.core.models import AuditEvent, Session, UsageHour, Voucher
from tests.conftest import NOW, Ctl
from tests.fakes import FakeClock
from tests.unit.test_daemon import PHONE1, PHONE2, Rig, cfg, codes_, rig  # noqa: F401 (fixtures)

DAY = timedelta(days=1)


def voucher(engine: Engine, code: str) -> Voucher:
    with dbmod.make_sessionmaker(engine)() as db:
        v = db.scalar(select(Voucher).where(Voucher.code == code))
        assert v is not None
        db.expunge(v)
        return v


def seconds_left(engine: Engine, code: str, now: datetime) -> tuple[int | None, datetime | None]:
    with dbmod.make_sessionmaker(engine)() as db:
        v = vouchers.find(db, code)
        st = vouchers.standing_of(v, now)
        return st.seconds_left, st.valid_until


def online_for(rig: Rig, minutes: int, *, traffic: bool = True) -> None:
    """Polls every 10 s; the phone moves a little each time, so it is never idle."""
    for _ in range(minutes * 6):
        rig.clock.advance(seconds=10)
        if traffic:
            rig.fw.add_traffic(PHONE1, up=100, down=1000)
        rig.d.tick()


def history(cfg: config.Config, engine: Engine) -> Rig:
    """A router that ran with a set clock until NOW, then lost power."""
    first = Rig(cfg, engine)
    first.d.start()
    first.d.tick()
    return first


def test_a_card_redeemed_on_a_1970_boot_keeps_its_whole_validity_and_time(
    cfg: config.Config, engine: Engine, codes_: list[str]
) -> None:
    history(cfg, engine)
    real_boot = NOW + timedelta(hours=26)  # power came back a day and two hours later
    rig = Rig(cfg, engine, FakeClock(datetime(1970, 1, 1, 0, 0, 30, tzinfo=UTC), synced=False))
    rig.d.start()
    # Provisional time: never before what the database has seen, and going on from there.
    assert not rig.d.clock.synced and rig.d.clock.now() >= NOW
    rig.call("login", ip=str(PHONE1.ip), code=codes_[0])
    online_for(rig, 10)
    assert seconds_left(engine, codes_[0], rig.d.clock.now())[0] == 3600 - 600

    rig.clock.step(to=real_boot + timedelta(minutes=10))  # NTP answers
    rig.clock.is_synced = True
    rig.d.tick()

    assert rig.d.clock.synced and rig.d.clock.offset == timedelta(0)
    v = voucher(engine, codes_[0])
    assert v.first_used_at == real_boot  # when it was really redeemed
    assert v.used_seconds == 600  # the online time, on the monotonic clock
    left, until = seconds_left(engine, codes_[0], rig.clock.now())
    assert left == 3600 - 600 and until == real_boot + DAY
    assert rig.fw.state().authorized == {PHONE1}  # not ended as idle or expired by the jump
    with dbmod.make_sessionmaker(engine)() as db:
        (s,) = db.scalars(select(Session).where(Session.ended_at.is_(None)))
        assert s.started_at == real_boot
        event = db.scalar(select(AuditEvent).where(AuditEvent.action == "clock.synced"))
        assert event is not None and event.actor == "hotspotd"


def test_a_card_redeemed_20_hours_behind_keeps_its_day(
    cfg: config.Config, engine: Engine, codes_: list[str]
) -> None:
    history(cfg, engine)
    real = NOW + timedelta(hours=21)
    # fake-hwclock saved a time after the last stamp: plausible, but 20 h behind, not synced
    rig = Rig(cfg, engine, FakeClock(real - timedelta(hours=20), synced=False))
    rig.d.start()
    assert rig.d.clock.offset == timedelta(0) and not rig.d.clock.synced
    rig.call("login", ip=str(PHONE1.ip), code=codes_[0])
    online_for(rig, 5)
    rig.clock.step(hours=20)
    rig.clock.is_synced = True
    rig.d.tick()
    v = voucher(engine, codes_[0])
    assert v.first_used_at == real
    left, until = seconds_left(engine, codes_[0], rig.clock.now())
    assert until == real + DAY  # a whole day of validity, not 4 hours
    assert left == 3600 - 300
    assert rig.fw.state().authorized == {PHONE1}  # the 20 h jump is no idle time
    online_for(rig, 20, traffic=False)  # and real idle still ends it, after 15 minutes
    assert rig.fw.state().authorized == frozenset()


def test_a_jump_backwards_gives_nothing_back(
    cfg: config.Config, engine: Engine, codes_: list[str]
) -> None:
    history(cfg, engine)
    real = NOW + timedelta(hours=1)
    rig = Rig(cfg, engine, FakeClock(real + timedelta(hours=5), synced=False))  # 5 h ahead
    rig.d.start()
    rig.call("login", ip=str(PHONE1.ip), code=codes_[0])
    online_for(rig, 10)
    before = seconds_left(engine, codes_[0], rig.d.clock.now())
    rig.clock.step(hours=-5)
    rig.clock.is_synced = True
    rig.d.tick()
    v = voucher(engine, codes_[0])
    assert v.first_used_at == real and v.used_seconds == 600
    left, until = seconds_left(engine, codes_[0], rig.clock.now())
    assert until == real + DAY and before[1] == real + timedelta(hours=5) + DAY
    assert left == before[0]  # nothing given back
    rig.clock.advance(seconds=10)
    rig.fw.add_traffic(PHONE1, up=1, down=1)
    rig.d.tick()
    assert voucher(engine, codes_[0]).used_seconds == 610  # the next poll charges its 10 s


def test_a_step_while_synced_keeps_idle_and_online_time_on_the_monotonic_clock(
    rig: Rig, engine: Engine, codes_: list[str]
) -> None:
    rig.call("login", ip=str(PHONE1.ip), code=codes_[0])
    online_for(rig, 1)
    rig.clock.step(hours=3)  # NTP corrects a drift of three hours while set
    rig.clock.advance(seconds=10)
    rig.fw.add_traffic(PHONE1, up=1, down=1)
    rig.d.tick()
    rig.clock.step(hours=-2)
    online_for(rig, 1, traffic=False)
    assert rig.fw.state().authorized == {PHONE1}  # not idle: 70 s of real quiet
    assert voucher(engine, codes_[0]).used_seconds == 130  # 13 polls, whatever the wall said


def test_power_lost_before_ntp_answered_then_a_boot_with_a_set_clock(
    cfg: config.Config, engine: Engine, codes_: list[str]
) -> None:
    history(cfg, engine)
    boot1 = Rig(cfg, engine, FakeClock(datetime(1970, 1, 1, tzinfo=UTC), synced=False))
    boot1.d.start()
    boot1.call("login", ip=str(PHONE1.ip), code=codes_[0])
    online_for(boot1, 5)
    real = NOW + timedelta(hours=30)
    boot2 = Rig(cfg, engine, FakeClock(real, synced=True))
    boot2.d.start()
    assert boot2.d.clock.synced
    v = voucher(engine, codes_[0])
    # When the power went is unknown: the span is moved as if the cut took no time, so the
    # card was used the 5 minutes just before this boot and the resident loses nothing.
    assert v.first_used_at == real - timedelta(minutes=5)
    assert v.used_seconds == 300
    with dbmod.make_sessionmaker(engine)() as db:
        assert db.scalar(select(AuditEvent).where(AuditEvent.action == "clock.synced"))


def test_usage_hours_from_the_provisional_span_are_rebuilt_at_their_real_hours(
    cfg: config.Config, engine: Engine, codes_: list[str]
) -> None:
    history(cfg, engine)
    rig = Rig(cfg, engine, FakeClock(datetime(1970, 1, 1, tzinfo=UTC), synced=False))
    rig.d.start()
    rig.call("login", ip=str(PHONE1.ip), code=codes_[0])
    online_for(rig, 50)  # 03:00-03:50 provisional
    rig.call("logout", ip=str(PHONE1.ip))
    rig.clock.advance(minutes=30)
    rig.d.tick()
    rig.d.rollup()  # the hour 03:00 of provisional time is rolled up
    with dbmod.make_sessionmaker(engine)() as db:
        assert db.scalars(select(UsageHour.hour)).all() == [NOW]
    real = datetime(2026, 11, 25, 8, 20, tzinfo=UTC)
    delta = real - rig.d.clock.now()
    rig.clock.step(to=real)
    rig.clock.is_synced = True
    rig.d.tick()
    rig.clock.advance(hours=2)
    rig.d.tick()
    rig.d.rollup()
    with dbmod.make_sessionmaker(engine)() as db:
        hours = db.scalars(select(UsageHour).order_by(UsageHour.hour)).all()
        assert sum(h.bytes_down for h in hours) == 50 * 6 * 1000  # every byte, once
        first, last = NOW + timedelta(seconds=10) + delta, NOW + timedelta(minutes=50) + delta
        assert [h.hour for h in hours] == sorted({first.replace(minute=0, second=0),
                                                   last.replace(minute=0, second=0)})  # fmt: skip


def test_the_daemon_publishes_its_clock_for_the_portal_and_the_cli(
    cfg: config.Config, engine: Engine, codes_: list[str], tmp_path: Path
) -> None:
    history(cfg, engine)
    rig = Rig(cfg, engine, FakeClock(datetime(1970, 1, 1, tzinfo=UTC), synced=False))
    rig.d.start()
    published = json.loads(cfg.daemon.clock_file.read_text())
    assert published["synced"] is False
    assert published["offset_s"] == rig.d.clock.offset.total_seconds() > 50 * 365 * 86400
    shared = clock_mod.SystemClock(published=cfg.daemon.clock_file)
    assert shared.now() - datetime.now(UTC) > timedelta(days=50 * 365)  # the same correction
    missing = clock_mod.SystemClock(published=tmp_path / "none.json")
    assert abs(missing.now() - datetime.now(UTC)) < timedelta(minutes=1)
    rig.clock.step(to=NOW + DAY)
    rig.clock.is_synced = True
    rig.d.tick()
    assert json.loads(cfg.daemon.clock_file.read_text())["offset_s"] == 0


def test_hotspotctl_status_says_whether_the_clock_is_set_and_since_when(
    cfg: config.Config, engine: Engine, codes_: list[str], config_file: Path
) -> None:
    ctl = Ctl(config_file)
    out = ctl("status")
    assert out.exit_code == 0, out.output
    assert "hotspotd: NOT RUNNING" in out.output and "not known yet" in out.output
    rig = Rig(cfg, engine, FakeClock(datetime(1970, 1, 1, tzinfo=UTC), synced=False))
    rig.d.start()
    out = ctl("status")
    assert "clock: NOT SET: provisional time since 2026-11-23 10:00 WIB" in out.output
    rig.clock.step(to=NOW + DAY)
    rig.clock.is_synced = True
    rig.d.tick()
    got = json.loads(ctl("status", "--json").output)
    assert got["clock"]["synced"] is True and got["clock"]["since"] == (NOW + DAY).isoformat()
    assert got["clock"]["corrections"] == 1 and got["clock_from"] == "database"


def test_the_kernel_and_timesyncd_are_asked(tmp_path: Path) -> None:
    assert clock_mod.kernel_synced() in (True, False)  # this machine answers adjtimex
    flag = tmp_path / "synchronized"
    assert clock_mod.os_synced(flag) is bool(clock_mod.kernel_synced())
    flag.touch()
    assert clock_mod.os_synced(flag) is True


# -- the free allowance across midnight -----------------------------------------------------


def test_a_free_session_across_midnight_ends_on_the_new_days_allowance(rig: Rig) -> None:
    # 23:50 WIB (16:50 UTC): 30 min / 100 MB a day
    rig.clock.step(to=datetime(2026, 11, 23, 16, 50, tzinfo=UTC))
    rig.call("login", ip=str(PHONE2.ip), free=True)
    for _ in range(3 * 360):  # three hours of polls, the phone busy all along
        rig.clock.advance(seconds=10)
        if PHONE2 in rig.fw.state().authorized:
            rig.fw.add_traffic(PHONE2, up=1000, down=10_000)
        rig.d.tick()
    assert rig.fw.state().authorized == frozenset()
    with dbmod.make_sessionmaker(rig.d.engine)() as db:
        rows = db.scalars(select(Session).order_by(Session.id)).all()
        (yesterday, today) = rows
        midnight = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)
        assert yesterday.ended_at == midnight and yesterday.end_reason == "day_end"
        assert yesterday.seconds == 590  # the poll at 00:00:00 is the new day's
        assert today.started_at == midnight and today.end_reason == "time"
        assert today.seconds == 1800  # the new day's 30 minutes, then the end
        assert today.ended_at == midnight + timedelta(minutes=29, seconds=50)
    # at midnight the phone stayed online: the kernel was never told to drop it
    drops = [c for k, c in rig.fw.calls if k == "apply" and c.deauthorize]  # type: ignore[attr-defined]
    assert len(drops) == 1


def test_nothing_but_the_clock_reads_the_wall_clock() -> None:
    """The guard for "one clock": a `datetime.now()` in a view is how the time bomb came in."""
    root = Path(__file__).resolve().parents[2]
    wall = re.compile(r"\b(datetime\.(now|utcnow|today)|date\.today|time\.time)\(")
    found = [
        f"{path.relative_to(root)}:{n}"
        for package in ("hotspotd", "portal")
        for path in sorted((root / package).rglob("*.py"))
        if path.name != "clock.py" or path.parent.name != "hotspotd"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if wall.search(line)
    ]
    assert found == []
