"""What the portal's workers share: who is online (from the database) and the first URLs."""

from __future__ import annotations

from datetime import timedelta
from ipaddress import IPv4Address
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import StaticPool

from hotspotd import schema
from hotspotd.core import db as dbmod
from hotspotd.core import login as core_login  # the helpers below are named login and logout
from hotspotd.core import sessions
from hotspotd.errors import HotspotError
from portal.residents.online import OnlineAddresses
from portal.residents.originals import OriginalUrls
from tests.conftest import NOW

FREE = sessions.FreePolicy(enabled=True, time_s=3600, data_bytes=None)
TZ = ZoneInfo("Asia/Jakarta")


def login(engine: Engine, ip: str, mac: str) -> None:
    with dbmod.make_sessionmaker(engine).begin() as db:
        core_login.login_free(db, ip=IPv4Address(ip), mac=mac, now=NOW, policy=FREE, tz=TZ)


def logout(engine: Engine, ip: str) -> None:
    with dbmod.make_sessionmaker(engine).begin() as db:
        core_login.logout(db, ip=IPv4Address(ip), now=NOW + timedelta(minutes=1))


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_online_set_follows_commits_of_other_connections(engine: Engine) -> None:
    clock = Clock()
    online = OnlineAddresses(engine, recheck_s=0.05, clock=clock)
    try:
        assert "10.66.0.20" not in online
        login(engine, "10.66.0.20", "02:00:00:00:00:20")  # the daemon, on its own connection
        assert "10.66.0.20" not in online  # checked a moment ago: not yet looked again
        clock.t += 0.06
        assert "10.66.0.20" in online and IPv4Address("10.66.0.20") in online
        logout(engine, "10.66.0.20")
        online.forget()  # this portal asked for the logout: at once
        assert "10.66.0.20" not in online
    finally:
        online.close()


def test_online_set_reads_again_only_when_the_database_changed(engine: Engine) -> None:
    clock = Clock()
    online = OnlineAddresses(engine, recheck_s=0.0, clock=clock)
    try:
        first = online.addresses()
        assert online.addresses() is first  # same data_version: the same set, no query
        login(engine, "10.66.0.21", "02:00:00:00:00:21")
        assert online.addresses() is not first and "10.66.0.21" in online
    finally:
        online.close()


def test_online_set_on_a_database_without_data_version_uses_a_time_limit() -> None:
    engine = create_engine(
        "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )
    schema.upgrade(engine)
    clock = Clock()
    online = OnlineAddresses(engine, ttl_s=1.0, recheck_s=0.0, clock=clock)
    assert "10.66.0.22" not in online
    login(engine, "10.66.0.22", "02:00:00:00:00:22")
    clock.t += 0.5
    assert "10.66.0.22" not in online  # within the time limit
    clock.t += 0.6
    assert "10.66.0.22" in online


def test_first_urls_are_shared_by_workers(tmp_path: Path) -> None:
    one, two = OriginalUrls(tmp_path / "run"), OriginalUrls(tmp_path / "run")
    one.prepare()
    assert (tmp_path / "run" / "originals").stat().st_mode & 0o777 == 0o700
    one.remember("10.66.0.30", "http://berita.example/kabar?id=1")
    one.remember(IPv4Address("10.66.0.30"), "http://berita.example/kabar?id=2")  # the latest
    assert two.peek("10.66.0.30") == "http://berita.example/kabar?id=2"
    assert two.take(IPv4Address("10.66.0.30")) == "http://berita.example/kabar?id=2"
    assert one.take("10.66.0.30") is None  # taken once
    assert [p.name for p in (tmp_path / "run" / "originals").iterdir()] == []  # no temp left


def test_first_urls_refuse_what_is_not_an_address_or_too_long(tmp_path: Path) -> None:
    store = OriginalUrls(tmp_path)
    store.prepare()
    for bad in ("../../etc/passwd", "10.66.0.1/../x", "", "10.66.0.300"):
        with pytest.raises(ValueError):
            store.remember(bad, "http://a.example/")
    store.remember("10.66.0.31", "http://a.example/" + "x" * 5000)
    assert store.peek("10.66.0.31") is None


def test_first_urls_expire_and_are_bounded(tmp_path: Path) -> None:
    mono = [5000.0]
    store = OriginalUrls(tmp_path, limit=3, ttl_s=60, clock=lambda: mono[0])
    store.prepare()
    for i in range(5):
        mono[0] = 5000.0 + (10 + i if i else 0)  # the first 10 s before the others
        store.remember(f"10.66.0.{40 + i}", f"http://a.example/{i}")
    mono[0] = 5061.0  # 61 s after the first, 50 s after the second
    assert store.peek("10.66.0.40") is None  # past its age
    assert store.peek("10.66.0.41") == "http://a.example/1"
    assert store.sweep() == 2  # the expired one, then the oldest beyond the limit of 3
    assert sorted(p.name for p in store.dir.iterdir()) == ["10.66.0.42", "10.66.0.43", "10.66.0.44"]


def test_first_urls_age_on_the_monotonic_clock_not_the_wall(tmp_path: Path) -> None:
    mono = [100.0]
    store = OriginalUrls(tmp_path, ttl_s=60, clock=lambda: mono[0])
    store.prepare()
    store.remember("10.66.0.45", "http://a.example/")
    mono[0] += 30
    assert store.peek("10.66.0.45") == "http://a.example/"
    mono[0] += 31
    assert store.peek("10.66.0.45") is None


def test_first_urls_directory_problems_are_clear(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(HotspotError, match=r"portal\.runtime_dir"):
        OriginalUrls(blocker).prepare()
    store = OriginalUrls(tmp_path / "run")
    store.prepare()
    store.dir.rmdir()  # tmpfs cleaned under the running portal: made again
    store.remember("10.66.0.50", "http://a.example/")
    assert store.peek("10.66.0.50") == "http://a.example/"
