"""The daemon with in-memory kernel fakes and an injected clock: jobs, operations, restarts."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from dataclasses import replace
from datetime import timedelta
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from hotspotd import config
from hotspotd.control import ControlClient, ControlError
from hotspotd.control.server import ControlServer, Peer
from hotspotd.core import db as dbmod
from hotspotd.core import plans, vouchers
from hotspotd.core.models import Device, Session
from hotspotd.core.plans import PlanTerms
from hotspotd.core.ports import DeviceKey, Rate
from hotspotd.daemon.jobs import interval_jobs, schedule
from hotspotd.daemon.service import Hotspotd
from hotspotd.errors import DatabaseNotReady, InvalidInput, NotFound
from tests.conftest import NOW
from tests.fakes import FakeClock, FakeFirewall, FakeShaper

PHONE1 = DeviceKey(IPv4Address("10.66.0.11"), "02:00:00:00:00:01")
PHONE2 = DeviceKey(IPv4Address("10.66.0.12"), "02:00:00:00:00:02")
ROOT = Peer(pid=1, uid=0, gid=0)


@pytest.fixture
def cfg(config_file: Path, tmp_path: Path) -> config.Config:
    base = config.load(config_file)
    return replace(
        base,
        daemon=replace(base.daemon, control_socket=tmp_path / "run" / "control.sock"),
        free=replace(base.free, enabled=True),
        network=replace(base.network, manage_forwarding=False),  # never the host's sysctl
    )


@pytest.fixture
def codes_(engine: Engine) -> list[str]:
    with dbmod.make_sessionmaker(engine).begin() as db:
        plans.add(
            db,
            "Harian",
            PlanTerms(
                price_rp=5000,
                validity_s=86400,
                time_s=3600,
                data_bytes=10_000_000,
                down_bps=2_000_000,
                up_bps=1_000_000,
                devices=1,
                idle_s=900,
            ),
            NOW,
        )
        _, made = vouchers.make_batch(db, plan_name="Harian", count=3, created_by="t", now=NOW)
        return [v.code for v in made]


class Rig:
    def __init__(self, cfg: config.Config, engine: Engine, clock: FakeClock | None = None) -> None:
        self.fw, self.sh, self.clock = FakeFirewall(), FakeShaper(), clock or FakeClock(NOW)
        self.macs = {PHONE1.ip: PHONE1.mac, PHONE2.ip: PHONE2.mac}
        self.d = Hotspotd(cfg, engine, self.fw, self.sh, self.macs.get, self.clock)

    def call(self, op: str, **params: object) -> object:
        """A residents' operation, as the portal asks it."""
        return self.d.handle(op, params, ROOT)

    def operator(self, op: str, **params: object) -> object:
        """An operator operation, as hotspotctl asks it."""
        return self.d.handle(op, {"actor": "cli:test", **params}, ROOT)


@pytest.fixture
def rig(cfg: config.Config, engine: Engine, codes_: list[str]) -> Rig:
    r = Rig(cfg, engine)
    r.d.start()
    return r


def test_refuses_an_unmigrated_database(cfg: config.Config, tmp_path: Path) -> None:
    empty = dbmod.make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    d = Hotspotd(cfg, empty, FakeFirewall(), FakeShaper(), lambda ip: None, FakeClock(NOW))
    with pytest.raises(DatabaseNotReady, match="hotspotctl db upgrade"):
        d.start()


def test_login_writes_then_authorizes_and_shapes(rig: Rig, codes_: list[str]) -> None:
    status = rig.call("login", ip=str(PHONE1.ip), code=codes_[0].lower())
    assert status["plan"] == "Harian" and status["seconds_left"] == 3600  # type: ignore[index]
    assert rig.fw.state().authorized == {PHONE1}
    assert rig.sh.state() == {PHONE1.ip: Rate(2_000_000, 1_000_000)}
    assert rig.fw.state().garden == {IPv4Address("10.66.0.1")}


def test_the_mac_comes_from_the_neighbour_table_never_the_request(
    rig: Rig, codes_: list[str]
) -> None:
    with pytest.raises(InvalidInput, match="unexpected parameter"):
        rig.call("login", ip=str(PHONE1.ip), code=codes_[0], mac="02:00:00:00:00:99")
    rig.macs.pop(PHONE1.ip)
    with pytest.raises(Exception, match="MAC address is not known"):
        rig.call("login", ip=str(PHONE1.ip), code=codes_[0])
    assert rig.fw.state().authorized == frozenset()


def test_poll_charges_and_enforce_cuts_at_the_data_limit(rig: Rig, codes_: list[str]) -> None:
    rig.call("login", ip=str(PHONE1.ip), code=codes_[0])
    rig.clock.advance(seconds=10)
    rig.fw.add_traffic(PHONE1, up=1_000_000, down=4_000_000)
    rig.d.tick()
    st = rig.call("status", ip=str(PHONE1.ip))
    assert st["data_left"] == 5_000_000 and st["seconds_left"] == 3590  # type: ignore[index]
    online = rig.operator("online")
    assert online[0]["down_bps"] == 4_000_000 * 8 // 10  # type: ignore[index]
    rig.clock.advance(seconds=10)
    rig.fw.add_traffic(PHONE1, up=0, down=5_000_000)
    rig.d.tick()
    assert rig.fw.state().authorized == frozenset()
    assert rig.sh.state() == {}
    with pytest.raises(Exception, match="not logged in"):
        rig.call("status", ip=str(PHONE1.ip))


def test_idle_timeout_and_time_limit(rig: Rig, codes_: list[str]) -> None:
    rig.call("login", ip=str(PHONE1.ip), code=codes_[0])
    rig.call("login", ip=str(PHONE2.ip), code=codes_[1])
    for _ in range(95):  # 15m50s: phone 2 keeps talking, phone 1 is silent
        rig.clock.advance(seconds=10)
        rig.fw.add_traffic(PHONE2, up=10, down=10)
        rig.d.tick()
    assert rig.fw.state().authorized == {PHONE2}
    for _ in range(265):  # past one hour of online time
        rig.clock.advance(seconds=10)
        rig.fw.add_traffic(PHONE2, up=10, down=10)
        rig.d.tick()
    assert rig.fw.state().authorized == frozenset()


def test_restart_rebuilds_from_the_database_and_ends_what_ran_out(
    cfg: config.Config, engine: Engine, codes_: list[str]
) -> None:
    first = Rig(cfg, engine)
    first.d.start()
    first.call("login", ip=str(PHONE1.ip), code=codes_[0])
    first.call("login", ip=str(PHONE2.ip), code=codes_[1])
    first.clock.advance(seconds=10)
    first.fw.add_traffic(PHONE1, up=100, down=1000)
    first.fw.add_traffic(PHONE2, up=100, down=9_999_000)
    first.d.tick()  # phone 2 is 900 bytes short of its limit

    # "kill -9": a new daemon on a fresh kernel (reboot) with the same database
    second = Rig(cfg, engine)
    second.clock.moment = first.clock.moment + timedelta(minutes=1)
    second.fw.setup()
    plan = second.d.start()
    assert second.fw.state().authorized == {PHONE1, PHONE2}
    assert len(plan.firewall.authorize) == 2
    # counters restarted at zero with the new table: the next poll charges exactly the new bytes
    second.clock.advance(seconds=10)
    second.fw.add_traffic(PHONE1, up=50, down=50)
    second.fw.add_traffic(PHONE2, up=0, down=1000)
    second.d.tick()
    assert second.call("status", ip=str(PHONE1.ip))["bytes_down"] == 1050  # type: ignore[index]
    assert second.fw.state().authorized == {PHONE1}  # phone 2 ran out of data


def test_expired_while_down_ends_at_start(
    cfg: config.Config, engine: Engine, codes_: list[str]
) -> None:
    first = Rig(cfg, engine)
    first.d.start()
    first.call("login", ip=str(PHONE1.ip), code=codes_[0])
    second = Rig(cfg, engine)
    second.clock.moment = NOW + timedelta(days=2)
    second.d.start()
    assert second.fw.state().authorized == frozenset()


def test_operator_operations(rig: Rig, codes_: list[str]) -> None:
    rig.call("login", ip=str(PHONE1.ip), code=codes_[0])
    assert rig.operator("kick", target=str(PHONE1.ip)) == {"kicked": [str(PHONE1.ip)]}
    assert rig.fw.state().authorized == frozenset()
    rig.call("login", ip=str(PHONE1.ip), code=codes_[0])
    ext = rig.operator("extend", code=codes_[0], seconds=1800, bytes=1_000_000)
    assert ext["seconds_left"] == 5400 and ext["data_left"] == 11_000_000  # type: ignore[index]
    rig.operator("trust", mac="02:00:00:00:00:AA")
    assert rig.fw.state().trusted == {"02:00:00:00:00:aa"}
    rig.operator("block", mac=PHONE1.mac)
    assert rig.fw.state().blocked == {PHONE1.mac} and rig.fw.state().authorized == frozenset()
    with pytest.raises(Exception, match="blocked"):
        rig.call("login", ip=str(PHONE1.ip), code=codes_[0])
    rig.operator("unblock", mac=PHONE1.mac)
    rig.call("login", ip=str(PHONE1.ip), code=codes_[0])
    assert rig.operator("reconcile") == {
        "authorized": 0,
        "deauthorized": 0,
        "shaped": 0,
        "unshaped": 0,
    }


def test_free_allowance_login(rig: Rig) -> None:
    st = rig.call("login", ip=str(PHONE2.ip), free=True)
    assert st["kind"] == "free" and st["seconds_left"] == 1800  # type: ignore[index]
    assert rig.sh.state()[PHONE2.ip] == Rate(1_000_000, 512_000)


@pytest.mark.parametrize(
    ("op", "params", "error"),
    [
        ("format_disk", {}, "unknown_op"),
        ("login", {"ip": "8.8.8.8", "code": "x"}, "invalid"),
        ("login", {"ip": "10.66.0.11"}, "invalid"),
        ("login", {"ip": 5, "code": "x"}, "invalid"),
        ("login", {"ip": "10.66.0.11", "code": "A" * 100}, "invalid"),
        ("login", {"ip": "10.66.0.11", "code": "ABC-DEF-GHK"}, "typo"),
        ("extend", {"actor": "cli:t", "code": "x", "seconds": -5}, "invalid"),
        ("extend", {"actor": "cli:t", "code": "x", "seconds": True}, "invalid"),
        ("block", {"actor": "cli:t", "mac": "; reboot"}, "invalid"),
        ("kick", {"actor": "cli:t", "target": "10.66.0.99"}, "not_found"),
    ],
)
def test_every_bad_request_is_a_stable_error_code(
    rig: Rig, op: str, params: dict, error: str
) -> None:  # type: ignore[type-arg]
    server = ControlServer.__new__(ControlServer)
    server.handler = rig.d.handle
    answer = server.answer(json.dumps({"op": op, **params}).encode(), ROOT)
    assert answer["ok"] is False and answer["error"] == error, answer
    assert answer["message"]


def test_jobs_are_scheduled_at_their_intervals(rig: Rig) -> None:
    from apscheduler.schedulers.background import BackgroundScheduler

    scheduler = BackgroundScheduler(timezone=rig.d.tz)
    schedule(rig.d, scheduler)
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert {"rollup", "backup"} <= set(jobs)
    ticked = {name: every for name, _f, every in interval_jobs(rig.d)}
    assert ticked == {"poll": rig.d.cfg.daemon.poll_interval_s, "reconcile": 60, "presence": 30}
    # a failing job is logged, not raised into the scheduler
    rig.fw.counters = lambda: (_ for _ in ()).throw(RuntimeError("netlink gone"))  # type: ignore[method-assign]
    dict((n, f) for n, f, _e in interval_jobs(rig.d))["poll"]()
    jobs["rollup"].func()


def test_socket_survives_a_thousand_malformed_requests(
    rig: Rig, codes_: list[str], cfg: config.Config
) -> None:
    server = ControlServer(cfg.daemon.control_socket, rig.d.handle, group=None)
    server.start()
    try:
        path = str(cfg.daemon.control_socket)
        assert oct(Path(path).stat().st_mode & 0o777) == "0o660"
        garbage = [
            b"{",
            b"[]\n",
            b"\xff\xfe\n",
            b'{"op": 5}\n',
            b"null\n",
            b'"x"\n',
            b'{"op":"login","ip":"10.66.0.11","code":{}}\n',
            b"x" * 20000 + b"\n",
            b'{"op":"nope"}\n',
            b"\n",
        ]
        deadline = time.monotonic() + 60
        for i in range(1000):
            assert time.monotonic() < deadline
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(5)
                s.connect(path)
                s.sendall(garbage[i % len(garbage)])
                s.shutdown(socket.SHUT_WR)
                s.recv(65536)
        # a slow client holds one connection; the daemon still answers others meanwhile
        slow = socket.socket(socket.AF_UNIX)
        slow.connect(path)
        slow.sendall(b'{"op":')
        client = ControlClient(path)
        assert client.call("login", ip=str(PHONE1.ip), code=codes_[0])["plan"] == "Harian"
        with pytest.raises(ControlError) as caught:
            client.call("login", ip=str(PHONE1.ip), code="ABC-DEF-GHK")
        assert caught.value.code == "typo"
        slow.close()
        threads = threading.active_count()
        assert threads < 50
    finally:
        server.stop()
    with pytest.raises(ControlError, match="not running"):
        ControlClient(path).call("online")


def test_hotspotctl_operations_through_the_socket(
    rig: Rig, codes_: list[str], cfg: config.Config, config_file: Path
) -> None:
    from tests.conftest import Ctl

    config_file.write_text(
        config_file.read_text() + f'\n[daemon]\ncontrol_socket = "{cfg.daemon.control_socket}"\n'
    )
    ctl = Ctl(config_file)
    down = ctl("online")
    assert down.exit_code == 1 and "hotspotd is not running" in down.stderr
    server = ControlServer(cfg.daemon.control_socket, rig.d.handle, group=None)
    server.start()
    try:
        assert "nobody is online" in ctl("online").output
        rig.call("login", ip=str(PHONE1.ip), code=codes_[0])
        table = ctl("online").output
        assert str(PHONE1.ip) in table and "Harian" in table
        assert json.loads(ctl("online", "--json").output)[0]["mac"] == PHONE1.mac
        out = ctl("extend", codes_[0], "--time", "30m", "--data", "1MB")
        assert out.exit_code == 0 and "time left 1h 30m" in out.output, out.output
        bad = ctl("extend", codes_[0])
        assert bad.exit_code != 0 and "give --time and/or --data" in bad.stderr
        assert ctl("kick", str(PHONE1.ip)).output.strip() == f"kicked {PHONE1.ip}"
        assert rig.fw.state().authorized == frozenset()
        assert ctl("trust", "02-00-00-00-00-AB").output.strip() == "trust: 02:00:00:00:00:ab"
        assert ctl("block", PHONE2.mac).exit_code == 0
        assert rig.fw.state().blocked == {PHONE2.mac}
        assert ctl("unblock", PHONE2.mac).exit_code == 0
        assert ctl("untrust", "02:00:00:00:00:ab").exit_code == 0
        assert rig.fw.state().trusted == frozenset() and rig.fw.state().blocked == frozenset()
        err = ctl("block", "nonsense")
        assert (
            err.exit_code == 1
            and err.stderr.strip() == "Error: 'mac' is not a MAC address (invalid)"
        )
    finally:
        server.stop()


def test_masquerade_goes_behind_the_uplink_or_nowhere(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hotspotd.daemon import main as daemon_mod

    base = config.load(config_file)
    assert base.network.masquerade is True  # on by default: an ISP modem has no route back
    given = replace(base, network=replace(base.network, lan_interface="br0", wan_interface="eth1"))
    assert daemon_mod.uplink_for_masquerade(given) == "eth1"
    monkeypatch.setattr(config, "detect_wan_interface", lambda: "ppp0")
    found = replace(given, network=replace(given.network, wan_interface=None))
    assert daemon_mod.uplink_for_masquerade(found) == "ppp0"
    monkeypatch.setattr(config, "detect_wan_interface", lambda: None)
    assert daemon_mod.uplink_for_masquerade(found) is None  # no uplink yet: a warning, no NAT
    off = replace(given, network=replace(given.network, masquerade=False))
    assert daemon_mod.uplink_for_masquerade(off) is None


def test_a_failing_counter_read_still_ends_sessions_out_of_time(
    rig: Rig, codes_: list[str]
) -> None:
    rig.call("login", ip=str(PHONE1.ip), code=codes_[0])
    rig.fw.counters = lambda: (_ for _ in ()).throw(OSError("netlink gone"))  # type: ignore[method-assign]
    for _ in range(91):  # 15 minutes and ten seconds of failed reads
        rig.clock.advance(seconds=10)
        rig.d.tick()
    assert rig.d.counter_failures == 91
    assert rig.fw.state().authorized == frozenset()  # the idle limit held all the same
    with dbmod.make_sessionmaker(rig.d.engine)() as db:
        assert vouchers.find(db, codes_[0]).used_seconds == 900  # and time was charged
        (s,) = db.scalars(select(Session))
        assert s.end_reason == "idle"


def test_a_second_hotspotd_refuses_to_start(
    cfg: config.Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hotspotd.daemon.main import main
    from hotspotd.instance import AlreadyRunning, hold_instance_lock

    held = hold_instance_lock(cfg.daemon.lock_file)
    try:
        assert cfg.daemon.lock_file.read_text().strip() == str(os.getpid())
        with pytest.raises(AlreadyRunning, match=rf"pid {os.getpid()}"):
            hold_instance_lock(cfg.daemon.lock_file)
        toml = tmp_path / "second.toml"
        toml.write_text(
            Path(cfg.source).read_text()
            + f'\n[daemon]\ncontrol_socket = "{cfg.daemon.control_socket}"\n'
        )
        # refused before it touches the kernel or the socket
        assert main(["--config", str(toml)]) == 1
        assert "another hotspotd is running" in capsys.readouterr().err
        assert not cfg.daemon.control_socket.exists()
    finally:
        held.close()
    again = hold_instance_lock(cfg.daemon.lock_file)  # free once the first one is gone
    again.close()


def test_a_dhcp_flood_of_made_up_macs_neither_stalls_a_login_nor_grows_the_devices(
    rig: Rig, codes_: list[str]
) -> None:
    import random

    from hotspotd.daemon.service import MAX_PENDING_NAMES

    rig.call("login", ip=str(PHONE1.ip), code=codes_[0])
    rig.d.on_dhcp(PHONE1.mac, "Galaxy-A05", "android-dhcp-14")
    rng = random.Random(7)
    for _ in range(20_000):
        mac = "02:" + ":".join(f"{rng.randrange(256):02x}" for _ in range(5))
        rig.d.on_dhcp(mac, "flood", None)
    assert len(rig.d.names) == MAX_PENDING_NAMES  # bounded
    rig.clock.advance(seconds=10)
    rig.d.tick()
    with dbmod.make_sessionmaker(rig.d.engine)() as db:
        devices = db.scalars(select(Device)).all()
        assert [(d.mac, d.hostname) for d in devices] == [(PHONE1.mac, "Galaxy-A05")]
    for _ in range(20_000):
        mac = "02:" + ":".join(f"{rng.randrange(256):02x}" for _ in range(5))
        rig.d.on_dhcp(mac, "flood", None)
    started = time.monotonic()
    rig.d.tick()
    assert rig.call("login", ip=str(PHONE2.ip), code=codes_[1])["plan"] == "Harian"  # type: ignore[index]
    assert time.monotonic() - started < 1.0  # a poll and a login with 20,000 made-up MACs


def test_a_spoofed_address_cannot_log_out_top_up_or_read_another_phone(
    rig: Rig, codes_: list[str]
) -> None:
    """Logout, top-up and status are bound to the MAC the neighbour table gives, as login is."""
    rig.call("login", ip=str(PHONE1.ip), code=codes_[0])
    rig.macs[PHONE1.ip] = "02:00:00:00:00:66"  # a laptop answering ARP for the phone's address
    for op, extra in (("logout", {}), ("topup", {"code": codes_[1]}), ("status", {})):
        with pytest.raises(NotFound):
            rig.call(op, ip=str(PHONE1.ip), **extra)
    assert rig.fw.state().authorized == {PHONE1}  # the phone is still online
    with dbmod.make_sessionmaker(rig.d.engine)() as db:
        assert vouchers.find(db, codes_[1]).first_used_at is None  # and the card is unspent
    rig.macs[PHONE1.ip] = PHONE1.mac
    assert rig.call("logout", ip=str(PHONE1.ip)) == {"ip": str(PHONE1.ip), "logged_out": True}


def test_a_phone_that_left_without_logging_out_is_logged_out(rig: Rig, codes_: list[str]) -> None:
    """So a laptop that clones the phone's MAC and address cannot ride its session."""
    here = {PHONE1.mac: True, PHONE2.mac: True}
    asked: list[str] = []

    def present(ip: IPv4Address, mac: str) -> bool:
        asked.append(mac)
        return here[mac]

    rig.d.present = present
    rig.call("login", ip=str(PHONE1.ip), code=codes_[0])
    rig.call("login", ip=str(PHONE2.ip), code=codes_[1])
    assert rig.d.check_presence() == [] and asked == []  # nobody quiet yet: nobody asked
    for _ in range(13):  # two minutes and ten seconds; phone 2 keeps busy
        rig.clock.advance(seconds=10)
        rig.fw.add_traffic(PHONE2, up=10, down=10)
        rig.d.tick()
    assert rig.d.check_presence() == [] and asked == [PHONE1.mac]  # quiet, but there
    here[PHONE1.mac] = False  # the phone went home
    assert rig.d.check_presence() == []  # one miss is not yet gone (a phone may miss one)
    assert rig.fw.state().authorized == {PHONE1, PHONE2}
    ended = rig.d.check_presence()
    assert len(ended) == 1 and rig.fw.state().authorized == {PHONE2}
    with dbmod.make_sessionmaker(rig.d.engine)() as db:
        s = db.get(Session, ended[0])
        assert s is not None and s.end_reason == "left" and s.mac == PHONE1.mac


def test_the_operator_sees_when_a_card_was_taken_over_by_another_device(
    rig: Rig, codes_: list[str], config_file: Path, cfg: config.Config
) -> None:
    from tests.conftest import Ctl

    rig.call("login", ip=str(PHONE1.ip), code=codes_[0])
    rig.clock.advance(minutes=5)
    rig.call("login", ip=str(PHONE2.ip), code=codes_[0])  # one device allowed: 2 takes over
    ctl = Ctl(config_file, rig.clock)
    out = ctl("voucher", "check", codes_[0])
    assert out.exit_code == 0, out.output
    assert "taken over by another device 1 time(s); last 2026-11-23 10:05 WIB" in out.output
    assert f"{PHONE1.mac} at {PHONE1.ip} replaced by {PHONE2.mac} at {PHONE2.ip}" in out.output
    got = json.loads(ctl("voucher", "check", codes_[0], "--json").output)
    assert len(got["takeovers"]) == 1
    assert json.loads(ctl("voucher", "check", codes_[1], "--json").output)["takeovers"] == []
