"""The admin's settings and backups pages, against a real hotspotd service behind a real control
socket (the kernel is the in-memory fake), and the residents' portal on the same database."""

# ruff: noqa: F811  (pytest fixtures imported from test_daemon are used as parameters)

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from sqlalchemy import Engine, select

from hotspotd import backup as bk
from hotspotd import config
from hotspotd.control.server import ControlServer
from hotspotd.core import db as dbmod
from hotspotd.core import operators
from hotspotd.core.models import AuditEvent, Role, Setting
from hotspotd.core.ports import Rate
from hotspotd.errors import InvalidInput
from portal.app import create_app
from portal.operator.app import create_operator_app
from tests.conftest import NOW
from tests.unit.test_daemon import PHONE1, PHONE2, Rig, codes_, rig  # noqa: F401
from tests.unit.test_operator_app import PASSWORD, Browser
from tests.unit.test_portal import Phone

# What the form sends when nothing is touched (the config's defaults, free internet on as the
# test config has it).
UNTOUCHED = {
    "village.name": "Desa Uji",
    "village.operator": "BUMDes",
    "village.message": "",
    "free.enabled": "true",
    "free.time": "30m",
    "free.data": "100MB",
    "free.down": "1M",
    "free.up": "512k",
}


@pytest.fixture
def cfg(config_file: Path, tmp_path: Path) -> config.Config:
    """As test_daemon's, with the state folder (backups) in the test's own place."""
    base = config.load(config_file)
    return replace(
        base,
        daemon=replace(base.daemon, control_socket=tmp_path / "run" / "control.sock",
                       state_dir=tmp_path / "state"),
        free=replace(base.free, enabled=True),
        network=replace(base.network, manage_forwarding=False),  # never the host's sysctl
    )  # fmt: skip


@pytest.fixture
def ui(rig: Rig, engine: Engine, cfg: config.Config) -> Iterator[Flask]:
    with dbmod.make_sessionmaker(engine).begin() as tx:
        for name, role in (("siti", Role.ADMIN), ("budi", Role.OPERATOR), ("dinas", Role.KOMINFO)):
            operators.add(tx, name, role, PASSWORD, actor="cli:root", now=NOW)
    server = ControlServer(cfg.daemon.control_socket, rig.d.handle, group=None)
    server.start()
    try:
        yield create_operator_app(cfg, {"TESTING": True}, clock=rig.clock)
    finally:
        server.stop()


@pytest.fixture
def admin(ui: Flask) -> Browser:
    b = Browser(ui)
    assert b.sign_in("siti").status_code == 302
    return b


def _save(b: Browser, **changed: str):  # type: ignore[no-untyped-def]
    form = {**UNTOUCHED, **{k.replace("__", "."): v for k, v in changed.items()}}
    if form["free.enabled"] != "true":
        del form["free.enabled"]  # an unticked box is not sent
    return b.post("/pengaturan", form)


def _rows(engine: Engine) -> dict[str, str]:
    with dbmod.make_sessionmaker(engine)() as tx:
        return {s.key: s.value for s in tx.scalars(select(Setting))}


def _audited(engine: Engine, prefix: str) -> list[tuple[str, str, str]]:
    with dbmod.make_sessionmaker(engine)() as tx:
        rows = tx.scalars(select(AuditEvent).where(AuditEvent.action.startswith(prefix)))
        return [(r.actor, r.action, r.subject) for r in rows]


def test_only_admins_see_or_change_settings_and_backups(ui: Flask, admin: Browser) -> None:
    anonymous = Browser(ui)
    for url in ("/pengaturan", "/cadangan", "/cadangan/hotspot-20261123-031700.tar.gz"):
        answer = anonymous.get(url)
        assert answer.status_code == 302 and answer.headers["Location"].startswith("/masuk")
    for name in ("budi", "dinas"):
        b = Browser(ui)
        b.sign_in(name)
        assert b.get("/pengaturan").status_code == 403
        assert _save(b, village__name="Desa Curian").status_code == 403
        assert b.get("/cadangan").status_code == 403
        assert b.post("/cadangan", {}).status_code == 403
        assert "/pengaturan" not in b.get("/").get_data(as_text=True)  # not in their menu
    page = admin.get("/pengaturan")
    assert page.status_code == 200 and "Pengaturan" in page.get_data(as_text=True)
    assert admin.get("/cadangan").status_code == 200
    assert 'href="/pengaturan"' in admin.get("/").get_data(as_text=True)
    assert anonymous.post("/pengaturan", UNTOUCHED, csrf=False).status_code == 400  # CSRF first


def test_a_saved_free_allowance_is_the_next_free_logins_without_a_restart(
    admin: Browser, rig: Rig, engine: Engine
) -> None:
    assert _save(admin, free__time="10m", free__data="5MB").status_code == 303
    status = rig.call("login", ip=str(PHONE2.ip), free=True)
    assert status["seconds_left"] == 600 and status["data_left"] == 5_000_000  # type: ignore[index]
    assert _rows(engine) == {"free.time": "10m", "free.data": "5MB"}
    assert sorted(_audited(engine, "setting.")) == [
        ("ui:siti", "setting.change", "free.data"),
        ("ui:siti", "setting.change", "free.time"),
    ]
    assert _save(admin, free__enabled="false").status_code == 303
    assert rig.fw.state().authorized == frozenset()  # switched off: the free phone is cut
    with pytest.raises(Exception, match="not offered"):
        rig.call("login", ip=str(PHONE2.ip), free=True)


def test_a_new_free_speed_reaches_a_phone_already_on_it(admin: Browser, rig: Rig) -> None:
    rig.call("login", ip=str(PHONE2.ip), free=True)
    assert rig.sh.state()[PHONE2.ip] == Rate(1_000_000, 512_000)
    assert _save(admin, free__down="2M", free__up="1M").status_code == 303
    assert rig.sh.state()[PHONE2.ip] == Rate(2_000_000, 1_000_000)  # before the page came back
    assert PHONE2 in rig.fw.state().authorized


def test_the_residents_pages_and_cards_show_the_new_names(
    admin: Browser, rig: Rig, cfg: config.Config, codes_: list[str]
) -> None:
    portal = create_app(cfg, {"TESTING": True}, clock=rig.clock)
    phone = Phone(portal, str(PHONE1.ip))
    before = phone.get("/").get_data(as_text=True)
    assert "Desa Uji" in before and "Selamat datang di Sukamaju" not in before
    saved = _save(admin, village__name="Desa Sukamaju", village__operator="BUMDes Maju <Jaya>",
                  village__message="Selamat datang di Sukamaju")  # fmt: skip
    assert saved.status_code == 303
    rig.clock.advance(seconds=1.1)  # the portal looks again when the database may have changed
    after = phone.get("/").get_data(as_text=True)  # the kept welcome page is made again
    assert "Desa Sukamaju" in after and "Desa Uji" not in after
    assert "Selamat datang di Sukamaju" in after and "BUMDes Maju &lt;Jaya&gt;" in after
    assert "Desa Sukamaju" in phone.get("/pasar").get_data(as_text=True)
    assert "Desa Sukamaju" in admin.get("/").get_data(as_text=True)  # the operator's header
    card = admin.get("/voucher/1/a4").get_data(as_text=True)  # codes_ made batch 1
    assert "Desa Sukamaju" in card and "Desa Uji" not in card


def test_back_to_the_default(admin: Browser, rig: Rig, engine: Engine) -> None:
    _save(admin, free__time="10m", village__name="Desa Sukamaju")
    page = admin.get("/pengaturan").get_data(as_text=True)
    assert 'value="10m"' in page and "Bawaan (berkas konfigurasi): 30m" in page
    answer = admin.post("/pengaturan", {**UNTOUCHED, "free.time": "10m", "default:free.time": "1",
                                        "village.name": "Desa Sukamaju"})  # fmt: skip
    assert answer.status_code == 303
    assert _rows(engine) == {"village.name": "Desa Sukamaju"}
    status = rig.call("login", ip=str(PHONE2.ip), free=True)
    assert status["seconds_left"] == 1800  # type: ignore[index]
    assert ("ui:siti", "setting.reset", "free.time") in _audited(engine, "setting.")


def test_bad_values_come_back_in_plain_words_and_nothing_is_saved(
    admin: Browser, rig: Rig, engine: Engine
) -> None:
    answer = _save(admin, free__time="sejam", free__down="1", village__name="  ",
                   free__data="10MB")  # fmt: skip
    assert answer.status_code == 400
    page = answer.get_data(as_text=True)
    assert "Tidak ada yang disimpan" in page
    assert page.count('aria-invalid="true"') == 3
    assert 'value="sejam"' in page  # what was typed stays in the form
    assert _rows(engine) == {} and _audited(engine, "setting.") == []
    with pytest.raises(InvalidInput):  # hotspotd checks again: a wrong value changes nothing
        rig.operator("settings_set", changes={"free.data": "1GB", "free.up": "lambat"})
    with pytest.raises(InvalidInput):
        rig.operator("settings_set", changes={"daemon.state_dir": "/tmp"})
    assert _rows(engine) == {}


def test_back_up_now_gives_a_valid_backup_to_download(
    admin: Browser, engine: Engine, cfg: config.Config, tmp_path: Path
) -> None:
    made = admin.post("/cadangan", {})
    assert made.status_code == 303
    name = parse_qs(urlsplit(made.headers["Location"]).query)["made"][0]
    page = admin.get(made.headers["Location"]).get_data(as_text=True)
    assert f'href="/cadangan/{name}"' in page and "Unduh sekarang" in page
    answer = admin.get(f"/cadangan/{name}")
    assert answer.status_code == 200
    assert answer.headers["Content-Disposition"].startswith("attachment")
    assert answer.headers["Cache-Control"] == "no-store"
    saved = tmp_path / "downloaded.tar.gz"
    saved.write_bytes(answer.get_data())
    manifest = bk.read_manifest(saved)
    assert manifest.created_at == NOW and bk.DB_NAME in manifest.files
    on_router = cfg.daemon.state_dir / bk.NIGHTLY_DIR / name
    assert stat.S_IMODE(on_router.stat().st_mode) & 0o007 == 0  # nothing for others
    assert _audited(engine, "backup.") == [
        ("ui:siti", "backup.make", name),
        ("ui:siti", "backup.download", name),
    ]


def test_only_files_in_the_listing_are_served(
    admin: Browser, cfg: config.Config, engine: Engine
) -> None:
    folder = cfg.daemon.state_dir / bk.NIGHTLY_DIR
    folder.mkdir(parents=True)
    (folder / "operator-copy.tar.gz").write_bytes(b"not one of ours")
    for url in (
        "/cadangan/../../etc/passwd",
        "/cadangan/..%2F..%2Fetc%2Fpasswd",
        "/cadangan/operator-copy.tar.gz",
        "/cadangan/hotspot-20261123-031700.tar.gz",  # the right shape, but not there
        "/cadangan/hotspot.db",
    ):
        assert admin.get(url).status_code == 404, url
    planted = admin.get("/cadangan?made=../../etc/passwd").get_data(as_text=True)
    assert "etc/passwd" not in planted
    assert _audited(engine, "backup.") == []


def test_the_backups_are_listed_newest_first_in_the_villages_time(
    admin: Browser, cfg: config.Config
) -> None:
    from datetime import timedelta

    bk.nightly(cfg, NOW - timedelta(days=1))
    bk.nightly(cfg, NOW)
    page = admin.get("/cadangan").get_data(as_text=True)
    # 03:00 UTC is 10:00 in Asia/Jakarta (the config's zone)
    assert page.index("23 Nov 2026 10:00 WIB") < page.index("22 Nov 2026 10:00 WIB")
    assert page.count('class="kind">setiap malam') == 2


def test_backups_are_readable_by_the_operator_uis_group_only(
    cfg: config.Config, engine: Engine
) -> None:
    import grp
    import pwd

    me = pwd.getpwuid(os.getuid())
    if config.PORTAL_USER in grp.getgrgid(me.pw_gid).gr_mem:  # pragma: no cover
        pytest.skip("this user's group has the portal's user in it")
    mine = replace(cfg, daemon=replace(cfg.daemon, operator_user=me.pw_name))
    folder = mine.daemon.state_dir / bk.NIGHTLY_DIR
    folder.mkdir(mode=0o2770)  # as an older version made it
    dest = bk.on_demand(mine, NOW)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o2750 and folder.stat().st_gid == me.pw_gid
    assert stat.S_IMODE(dest.stat().st_mode) == 0o640 and dest.stat().st_gid == me.pw_gid
    nobody = replace(cfg, daemon=replace(cfg.daemon, operator_user=None))
    dest = bk.on_demand(nobody, NOW.replace(minute=5))
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700  # root's alone
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600


def test_on_demand_backups_never_push_a_nightly_one_out(cfg: config.Config, engine: Engine) -> None:
    from datetime import timedelta

    nightly = bk.nightly(cfg, NOW)
    made = [
        bk.on_demand(cfg, NOW + timedelta(minutes=m)) for m in range(bk.rotation.ON_DEMAND_KEEP + 3)
    ]
    names = {k.name for k in bk.listing(cfg)}
    assert nightly is not None and nightly.name in names
    assert names - {nightly.name} == {p.name for p in made[3:]}  # the newest few of its own
