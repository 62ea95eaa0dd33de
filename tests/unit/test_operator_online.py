"""The operator's "online now" page and its actions, against a real hotspotd service behind a
real control socket (the kernel is the in-memory fake)."""

# ruff: noqa: F811  (pytest fixtures imported from test_daemon are used as parameters)

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import Engine, select

from hotspotd import config
from hotspotd.control.server import ControlServer
from hotspotd.core import db as dbmod
from hotspotd.core import operators
from hotspotd.core.models import AuditEvent, Device, Role
from portal.operator.app import create_operator_app
from tests.conftest import NOW
from tests.unit.test_daemon import PHONE1, PHONE2, Rig, cfg, codes_, rig  # noqa: F401
from tests.unit.test_operator_app import PASSWORD, Browser


@pytest.fixture
def ui(rig: Rig, engine: Engine, cfg: config.Config) -> Iterator[Flask]:
    with dbmod.make_sessionmaker(engine).begin() as tx:
        operators.add(tx, "budi", Role.OPERATOR, PASSWORD, actor="cli:root", now=NOW)
        operators.add(tx, "dinas", Role.KOMINFO, PASSWORD, actor="cli:root", now=NOW)
    server = ControlServer(cfg.daemon.control_socket, rig.d.handle, group=None)
    server.start()
    try:
        yield create_operator_app(cfg, {"TESTING": True}, clock=rig.clock)
    finally:
        server.stop()


def test_the_operator_sees_who_is_online_and_kicks_them(
    ui: Flask, rig: Rig, codes_: list[str], engine: Engine
) -> None:
    rig.call("login", ip=str(PHONE1.ip), code=codes_[0])
    rig.call("login", ip=str(PHONE2.ip), free=True)
    b = Browser(ui)
    b.sign_in("budi")
    page = b.get("/online").get_data(as_text=True)
    assert str(PHONE1.ip) in page and str(PHONE2.ip) in page and "Harian" in page
    assert 'http-equiv="refresh"' in page  # it refreshes itself, no script needed
    kicked = b.post("/online/kick", {"ip": str(PHONE1.ip)})
    assert kicked.status_code == 303
    assert PHONE1 not in rig.fw.state().authorized  # cut before the page came back
    assert "Dikeluarkan" in b.get(kicked.headers["Location"]).get_data(as_text=True)
    planted = b.get("/online?done=kick&what=Akun+diblokir,+telepon+0812")
    planted = planted.get_data(as_text=True)
    assert "telepon" not in planted and "Dikeluarkan" not in planted
    with dbmod.make_sessionmaker(engine)() as tx:
        actors = tx.scalars(select(AuditEvent.actor).where(AuditEvent.action == "session.kick"))
        assert list(actors) == ["ui:budi"]


def test_extend_block_and_trust_go_through_hotspotd(
    ui: Flask, rig: Rig, codes_: list[str], engine: Engine
) -> None:
    rig.call("login", ip=str(PHONE1.ip), code=codes_[0])
    b = Browser(ui)
    b.sign_in("budi")
    before = rig.operator("online")[0]["seconds_left"]  # type: ignore[index]
    assert b.post("/online/extend", {"code": codes_[0], "time": "1h"}).status_code == 303
    after = rig.operator("online")[0]["seconds_left"]  # type: ignore[index]
    assert after == before + 3600
    bad = b.post("/online/extend", {"code": codes_[0], "time": "sejam"})
    assert bad.status_code == 400 and "30m" in bad.get_data(as_text=True)
    assert b.post("/online/trust", {"mac": "02:00:00:00:00:aa"}).status_code == 303
    assert b.post("/online/block", {"mac": PHONE1.mac}).status_code == 303
    assert rig.fw.state().authorized == frozenset()
    with dbmod.make_sessionmaker(engine)() as tx:
        phone = tx.scalar(select(Device).where(Device.mac == PHONE1.mac))
        assert phone is not None and phone.blocked


def test_kominfo_cannot_kick(ui: Flask, rig: Rig, codes_: list[str]) -> None:
    rig.call("login", ip=str(PHONE1.ip), code=codes_[0])
    b = Browser(ui)
    b.sign_in("dinas")
    assert b.get("/online").status_code == 403
    assert b.post("/online/kick", {"ip": str(PHONE1.ip)}).status_code == 403
    assert PHONE1 in rig.fw.state().authorized


def test_a_daemon_that_does_not_answer_is_said_plainly(
    ui: Flask, rig: Rig, cfg: config.Config
) -> None:
    b = Browser(ui)
    b.sign_in("budi")
    cfg.daemon.control_socket.unlink()  # as if hotspotd were stopped
    page = b.get("/online").get_data(as_text=True)
    assert "hotspotd tidak menjawab" in page


def test_trusted_and_blocked_devices_with_their_notes(
    ui: Flask, rig: Rig, codes_: list[str], engine: Engine
) -> None:
    rig.call("login", ip=str(PHONE1.ip), code=codes_[0])
    b = Browser(ui)
    b.sign_in("budi")
    till = {
        "mac": "02-00-00-00-00-AA",
        "note": "Kasir <b>Bu Siti</b>",
        "flag": "trusted",
        "on": "1",
    }
    assert b.post("/perangkat", till).status_code == 303
    assert b.post("/perangkat", {"mac": PHONE1.mac, "note": "ganggu", "flag": "blocked",
                                 "on": "1"}).status_code == 303  # fmt: skip
    assert rig.fw.state().authorized == frozenset()  # blocked: cut at once
    page = b.get("/perangkat").get_data(as_text=True)
    assert "02:00:00:00:00:aa" in page and "Kasir &lt;b&gt;Bu Siti&lt;/b&gt;" in page
    bad = b.post("/perangkat", {"mac": "; reboot", "flag": "blocked", "on": "1"})
    assert bad.status_code == 400 and "02:1a:2b:3c:4d:5e" in bad.get_data(as_text=True)
    assert (
        b.post("/perangkat", {"mac": PHONE1.mac, "flag": "blocked", "on": "0"}).status_code == 303
    )
    with dbmod.make_sessionmaker(engine)() as tx:
        phone = tx.scalar(select(Device).where(Device.mac == PHONE1.mac))
        assert phone is not None and not phone.blocked and phone.note == "ganggu"
        notes = tx.scalars(select(AuditEvent.detail).where(AuditEvent.action == "device.trust"))
        assert list(notes) == ["Kasir <b>Bu Siti</b>"]
    kominfo = Browser(ui)
    kominfo.sign_in("dinas")
    assert kominfo.get("/perangkat").status_code == 403


def test_plans_are_added_changed_through_hotspotd_and_retired(
    ui: Flask, rig: Rig, codes_: list[str], engine: Engine
) -> None:
    from hotspotd.core.models import Plan
    from hotspotd.core.ports import Rate

    rig.call("login", ip=str(PHONE1.ip), code=codes_[0])  # on Harian: 2M down, 1M up
    b = Browser(ui)
    b.sign_in("budi")
    new = {"name": "Pelajar", "price": "Rp 3.000", "validity": "7d", "time": "", "data": "2GB",
           "down": "1M", "up": "512k", "devices": "1", "idle": "15m"}  # fmt: skip
    assert b.post("/paket", new).status_code == 303
    bad = b.post("/paket", {**new, "name": "Lagi", "data": "banyak"})
    assert bad.status_code == 400 and "1GB" in bad.get_data(as_text=True)
    again = b.post("/paket", new)
    assert again.status_code == 400 and "Sudah ada paket" in again.get_data(as_text=True)
    with dbmod.make_sessionmaker(engine)() as tx:
        harian = tx.scalar(select(Plan).where(Plan.name == "Harian"))
        pelajar = tx.scalar(select(Plan).where(Plan.name == "Pelajar"))
        assert harian is not None and pelajar is not None
        assert (pelajar.price_rp, pelajar.time_s, pelajar.data_bytes) == (3000, None, 2 * 10**9)
        harian_id = harian.id
    form = b.get(f"/paket/{harian_id}").get_data(as_text=True)
    assert 'value="2M"' in form  # the plan as it is, in the units people type
    changed = {"name": "Harian", "price": "5000", "validity": "1d", "time": "1h", "data": "10MB",
               "down": "500k", "up": "", "devices": "1", "idle": "15m"}  # fmt: skip
    assert b.post(f"/paket/{harian_id}", changed).status_code == 303
    assert rig.sh.state()[PHONE1.ip] == Rate(500_000, None)  # the phone's new speed, at once
    assert b.post(f"/paket/{harian_id}/pensiun", {}).status_code == 303
    with dbmod.make_sessionmaker(engine)() as tx:
        actions = list(tx.scalars(select(AuditEvent.action).where(AuditEvent.actor == "ui:budi")))
    assert actions == ["plan.add", "plan.edit", "plan.retire"]
    kominfo = Browser(ui)
    kominfo.sign_in("dinas")
    assert kominfo.get("/paket").status_code == 403
    assert kominfo.post(f"/paket/{harian_id}/pensiun", {}).status_code == 403


def test_a_lost_card_or_a_whole_batch_is_revoked_and_cut(
    ui: Flask, rig: Rig, codes_: list[str], engine: Engine
) -> None:
    from hotspotd.core.models import Voucher, VoucherState

    rig.call("login", ip=str(PHONE1.ip), code=codes_[0])
    b = Browser(ui)
    b.sign_in("budi")
    lost = b.post("/voucher/cabut", {"code": codes_[0].lower()})
    assert lost.status_code == 303
    assert rig.fw.state().authorized == frozenset()  # the phone on it, cut at once
    assert "dibatalkan" in b.get(lost.headers["Location"]).get_data(as_text=True)
    unknown = b.post("/voucher/cabut", {"code": "ABC-DEF-GHJ"})
    assert unknown.status_code == 400 and "Tidak ada voucher" in unknown.get_data(as_text=True)
    with dbmod.make_sessionmaker(engine)() as tx:
        batch_id = tx.scalars(select(Voucher.batch_id)).first()
    assert b.post("/voucher/cabut", {"batch": str(batch_id)}).status_code == 400  # not sure
    assert b.post("/voucher/cabut", {"batch": str(batch_id), "sure": "1"}).status_code == 303
    with dbmod.make_sessionmaker(engine)() as tx:
        states = set(tx.scalars(select(Voucher.state)))
        revokers = set(tx.scalars(select(AuditEvent.actor).where(
            AuditEvent.action == "voucher.revoke")))  # fmt: skip
    assert states == {VoucherState.REVOKED} and revokers == {"ui:budi"}
    kominfo = Browser(ui)
    kominfo.sign_in("dinas")
    assert kominfo.post("/voucher/cabut", {"code": codes_[1]}).status_code == 403


def test_many_devices_come_a_page_at_a_time_and_one_is_found(
    ui: Flask, rig: Rig, codes_: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from portal.operator import online

    monkeypatch.setattr(online, "PER_PAGE", 1)
    rig.call("login", ip=str(PHONE1.ip), code=codes_[0])
    rig.call("login", ip=str(PHONE2.ip), free=True)
    b = Browser(ui)
    b.sign_in("budi")
    first = b.get("/online").get_data(as_text=True)
    second = b.get("/online?page=2").get_data(as_text=True)
    assert "Halaman 1 dari 2" in first and "page=2" in first
    shown = [(str(p.ip) in page) for page in (first, second) for p in (PHONE1, PHONE2)]
    assert shown.count(True) == 2 and shown[0] != shown[2]  # each phone on one page only
    assert b.get("/online?page=99").status_code == 200  # past the end: the last page
    found = b.get(f"/online?q={PHONE2.mac.upper()}").get_data(as_text=True)
    assert str(PHONE2.ip) in found and str(PHONE1.ip) not in found
    by_code = b.get(f"/online?q={codes_[0][:5].lower()}").get_data(as_text=True)
    assert str(PHONE1.ip) in by_code and str(PHONE2.ip) not in by_code
    none = b.get("/online?q=zzz").get_data(as_text=True)
    assert str(PHONE1.ip) not in none and str(PHONE2.ip) not in none


def test_the_online_page_asks_hotspotd_for_its_page_only(
    ui: Flask, rig: Rig, codes_: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from portal.operator import online

    monkeypatch.setattr(online, "PER_PAGE", 1)
    asked: list[dict[str, object]] = []
    real_ask = online.ask

    def ask(op: str, **params: object) -> object:
        asked.append({"op": op, **params})
        return real_ask(op, **params)

    monkeypatch.setattr(online, "ask", ask)
    rig.call("login", ip=str(PHONE1.ip), code=codes_[0])
    rig.call("login", ip=str(PHONE2.ip), free=True)
    b = Browser(ui)
    b.sign_in("budi")
    page = b.get("/online?q=02:00&page=2").get_data(as_text=True)
    assert asked[-1] == {"op": "online", "page": 2, "per_page": 1, "find": "02:00"}
    assert "Halaman 2 dari 2" in page and "2 perangkat cocok" in page
    assert "q=02:00&amp;page=1" in page  # the way back keeps the search
    for odd in ("-5", "abc", "99999999999", ""):
        assert b.get(f"/online?page={odd}").status_code == 200
    assert asked[-1]["page"] == 1 and [a["page"] for a in asked[-4:-1]] == [1, 1, 10**6]
    assert "Halaman 2 dari 2" in b.get("/online?page=99999999999").get_data(as_text=True)
    wild = b.get("/online?q=%25").get_data(as_text=True)  # "%" is only itself, not everything
    assert str(PHONE1.ip) not in wild and str(PHONE2.ip) not in wild
