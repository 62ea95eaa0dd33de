"""The operator's card list and one card's history; a batch's note from the form, the CLI,
the CSV and the migration."""

# ruff: noqa: F811  (pytest fixtures imported from test_operator_app are used as parameters)

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session as DB

from hotspotd import schema
from hotspotd.core import codes, plans, voucher_queries, vouchers
from hotspotd.core import db as dbmod
from hotspotd.core.models import Device, Session, SessionKind, Voucher, VoucherBatch, VoucherState
from hotspotd.core.plans import PlanTerms
from hotspotd.errors import InvalidInput
from portal.operator import printing
from tests.conftest import NOW, Ctl
from tests.unit.test_cli import ok, one_line_error, ready  # noqa: F401
from tests.unit.test_operator_app import Browser, app, clock, harian  # noqa: F401

PHONE_A = "02:aa:00:00:00:01"
PHONE_B = "02:bb:00:00:00:02"


def _tbody(page: str) -> str:
    return page.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in page else ""


def _codes_shown(page: str) -> list[str]:
    return re.findall(r'<a class="code" href="[^"]+">([^<]+)</a>', page)


@pytest.fixture
def stock(engine: Engine, harian: None) -> dict[str, list[str]]:
    """Two plans, three batches: 60 Harian cards (two of them used), 3 Mingguan, 2 revoked."""
    with dbmod.make_sessionmaker(engine).begin() as tx:
        plans.add(tx, "Mingguan", PlanTerms(price_rp=20000, validity_s=7 * 86400), NOW)
        _, many = vouchers.make_batch(tx, plan_name="Harian", count=60, created_by="t",
                                      now=NOW, batch_name="Pasar")  # fmt: skip
        later = NOW + timedelta(minutes=1)
        _, week = vouchers.make_batch(tx, plan_name="Mingguan", count=3, created_by="t",
                                      now=later, batch_name="Sekolah")  # fmt: skip
        _, lost = vouchers.make_batch(tx, plan_name="Harian", count=2, created_by="t",
                                      now=later, batch_name="Hilang")  # fmt: skip
        for v in many[:2]:
            vouchers.redeem(tx, v, NOW + timedelta(minutes=5))
        for v in lost:
            vouchers.revoke(tx, v.code, actor="t", now=NOW + timedelta(minutes=6))
        return {
            "many": [v.code for v in many],
            "week": [v.code for v in week],
            "lost": [v.code for v in lost],
            "used": [v.code for v in many[:2]],
        }


def _page(b: Browser, url: str) -> str:
    answer = b.get(url)
    assert answer.status_code == 200, url
    return str(answer.get_data(as_text=True))


def _signed_in(app: Flask, name: str = "budi") -> Browser:
    b = Browser(app)
    b.sign_in(name)
    return b


def test_roles_are_checked_on_the_server(app: Flask, stock: dict[str, list[str]]) -> None:
    code = codes.display(stock["lost"][0])  # the newest: on the first page
    for url in ("/voucher/kartu", f"/voucher/kartu/{code}"):
        anonymous = Browser(app).get(url)
        assert anonymous.status_code == 302 and "/masuk" in anonymous.headers["Location"]
        assert _signed_in(app, "dinas").get(url).status_code == 403
        for staff in ("budi", "siti"):
            seen = _signed_in(app, staff).get(url)
            assert seen.status_code == 200 and code in seen.get_data(as_text=True), (url, staff)


def test_the_list_is_paged_newest_first_and_filters_filter(
    app: Flask, stock: dict[str, list[str]], engine: Engine
) -> None:
    b = _signed_in(app)
    first = b.get("/voucher/kartu").get_data(as_text=True)
    shown = _codes_shown(first)
    assert len(shown) == voucher_queries.PAGE
    newest = [codes.display(c) for c in stock["lost"]]
    assert set(shown[:2]) == set(newest)  # the batch made last comes first
    assert 'rel="next"' in first and 'rel="prev"' not in first
    second = b.get("/voucher/kartu?page=2").get_data(as_text=True)
    assert len(_codes_shown(second)) == 65 - voucher_queries.PAGE
    assert not set(_codes_shown(second)) & set(shown) and 'rel="next"' not in second

    with dbmod.make_sessionmaker(engine)() as tx:
        mingguan = tx.scalar(select(plans.Plan.id).where(plans.Plan.name == "Mingguan"))
        pasar = tx.scalar(select(VoucherBatch.id).where(VoucherBatch.name == "Pasar"))
    by_plan = _codes_shown(b.get(f"/voucher/kartu?plan={mingguan}").get_data(as_text=True))
    assert sorted(by_plan) == sorted(codes.display(c) for c in stock["week"])
    revoked = _codes_shown(b.get("/voucher/kartu?state=revoked").get_data(as_text=True))
    assert sorted(revoked) == sorted(codes.display(c) for c in stock["lost"])
    active = _codes_shown(
        b.get(f"/voucher/kartu?state=active&batch={pasar}").get_data(as_text=True)
    )
    assert sorted(active) == sorted(codes.display(c) for c in stock["used"])
    batch_page = b.get(f"/voucher/kartu?batch={pasar}&state=unused")
    paged = batch_page.get_data(as_text=True)
    assert len(_codes_shown(paged)) == 50
    nxt = re.search(r'href="([^"]+)" rel="next"', paged)
    assert nxt  # the next page keeps the filters
    nxt_url = nxt.group(1).replace("&amp;", "&")
    assert f"batch={pasar}" in nxt_url and "state=unused" in nxt_url
    rest = _codes_shown(b.get(nxt_url).get_data(as_text=True))
    assert len(rest) == 58 - 50 and not set(rest) & {codes.display(c) for c in stock["used"]}
    # nonsense in the query string is left out, never an error page
    odd = b.get("/voucher/kartu?plan=x&batch=-1&state=gone&page=%27")
    assert odd.status_code == 200 and len(_codes_shown(odd.get_data(as_text=True))) == 50
    assert _codes_shown(b.get("/voucher/kartu?plan=999999").get_data(as_text=True)) == []


def test_a_code_is_found_however_it_is_typed(app: Flask, stock: dict[str, list[str]]) -> None:
    b = _signed_in(app)
    code = stock["many"][7]
    shown = codes.display(code)
    typed = shown.lower().replace("-", " - ")  # "abc - def - ghj"
    for q in (typed, code, shown, shown[:7].lower()):
        found = _codes_shown(b.get("/voucher/kartu", query_string={"q": q}).get_data(as_text=True))
        assert shown in found, q
        assert all(codes.normalize(f).startswith(codes.normalize(q)) for f in found)
    assert (
        len(_codes_shown(b.get("/voucher/kartu", query_string={"q": code}).get_data(as_text=True)))
        == 1
    )
    assert _codes_shown(b.get("/voucher/kartu?q=OOOO").get_data(as_text=True)) == []  # no O


def test_code_prefix_is_normalized_as_typed_codes_are() -> None:
    assert voucher_queries.code_prefix(" abc-def ") == "ABCDEF"
    assert voucher_queries.code_prefix("1234 5678 901") == "12345678901"
    assert voucher_queries.code_prefix(" - ") is None and voucher_queries.code_prefix(None) is None


def _used_on_two_phones(db: DB, code: str) -> Voucher:
    """A card used on phone A (twice) and phone B; another card on phone B that is not it."""
    voucher = db.scalar(select(Voucher).where(Voucher.code == code))
    assert voucher is not None
    vouchers.redeem(db, voucher, NOW + timedelta(hours=1))
    a = Device(mac=PHONE_A, hostname="HP-Siti", first_seen_at=NOW, last_seen_at=NOW)
    b = Device(mac=PHONE_B, hostname=None, first_seen_at=NOW, last_seen_at=NOW)
    db.add_all([a, b])
    db.flush()

    def session(device: Device, start_h: float, end_h: float | None, why: str | None,
                down: int, up: int, on: Voucher = voucher) -> None:  # fmt: skip
        db.add(Session(
            kind=SessionKind.VOUCHER, voucher=on, device=device, ip="10.66.1.20",
            mac=device.mac, started_at=NOW + timedelta(hours=start_h),
            last_activity_at=NOW + timedelta(hours=end_h or start_h + 0.5),
            ended_at=NOW + timedelta(hours=end_h) if end_h is not None else None,
            end_reason=why, bytes_down=down, bytes_up=up, seconds=600,
        ))  # fmt: skip

    session(a, 1, 1.5, "logout", 120_000_000, 4_000_000)
    session(b, 2, 2.25, "replaced", 30_000_000, 1_000_000)
    session(a, 3, None, None, 5_000_000, 200_000)  # online now
    other = db.scalar(select(Voucher).where(Voucher.code != code, Voucher.state == "unused"))
    assert other is not None
    vouchers.redeem(db, other, NOW)
    session(b, 0, 0.5, "idle", 777_777_777, 1, on=other)  # not this card's
    voucher.used_seconds, voucher.used_bytes = 1800, 160_200_000
    db.flush()
    return voucher


def test_history_of_a_card_used_on_two_devices(
    app: Flask, clock: object, stock: dict[str, list[str]], engine: Engine
) -> None:
    code = stock["many"][10]
    with dbmod.make_sessionmaker(engine).begin() as tx:
        _used_on_two_phones(tx, code)
    clock.advance(seconds=4 * 3600)  # type: ignore[attr-defined]
    with dbmod.make_sessionmaker(engine)() as tx:
        voucher = voucher_queries.find_code(tx, codes.display(code).lower())
        assert voucher is not None
        h = voucher_queries.history(tx, voucher, NOW + timedelta(hours=4))
        bounded = voucher_queries.history(tx, voucher, NOW, max_sessions=2)
    assert [d["mac"] for d in h["devices"]] == [PHONE_A, PHONE_B]  # last seen first
    assert [d["sessions"] for d in h["devices"]] == [2, 1]
    assert h["devices"][0]["hostname"] == "HP-Siti" and h["devices"][1]["hostname"] is None
    assert h["devices"][0]["first_seen_at"] == (NOW + timedelta(hours=1)).isoformat()
    assert [s["end_reason"] for s in h["sessions"]] == [None, "replaced", "logout"]
    assert [s["bytes_down"] for s in h["sessions"]] == [5_000_000, 30_000_000, 120_000_000]
    assert [s["duration_s"] for s in h["sessions"]] == [3600, 900, 1800]  # the open one: to now
    assert h["sessions_total"] == 3 and h["state"] == "active" and h["revocable"] is True
    assert h["time_left_s"] == 3 * 3600 - 1800 and h["used_bytes"] == 160_200_000
    assert len(bounded["sessions"]) == 2 and bounded["sessions_total"] == 3

    page = _signed_in(app).get(f"/voucher/kartu/{code.lower()}").get_data(as_text=True)
    assert codes.display(code) in page and "Harian" in page and "Pasar" in page
    assert "Rp 5.000" in page and "HP-Siti" in page and PHONE_B in page
    assert "777,8 MB" not in page and "777.8 MB" not in page  # the other card's session
    assert "23 Nov 2026 11:00 WIB" in page  # first used, in the village's zone
    assert "24 Nov 2026 11:00 WIB" in page  # valid until, a day later
    sessions = page.split("<tbody>")[2]
    assert sessions.index("120 MB") > sessions.index("30 MB") > sessions.index("5 MB")
    assert "keluar" in sessions.lower() and 'name="back" value="card"' in page


def test_an_unknown_or_mistyped_code_is_a_plain_404(
    app: Flask, stock: dict[str, list[str]]
) -> None:
    b = _signed_in(app)
    for code in ("ABC-DEF-GHJ", "hello", "%3Cb%3Ex"):
        answer = b.get(f"/voucher/kartu/{code}")
        assert answer.status_code == 404
        page = answer.get_data(as_text=True)
        assert "Periksa kode" in page and 'href="/voucher/kartu"' in page
        assert "<b>" not in page


def test_revoking_from_the_card_page_needs_csrf_and_staff(
    app: Flask, stock: dict[str, list[str]]
) -> None:
    code = codes.display(stock["many"][3])
    b = _signed_in(app)
    page = b.get(f"/voucher/kartu/{code}").get_data(as_text=True)
    assert 'action="/voucher/cabut"' in page and 'name="csrf"' in page
    assert b.post("/voucher/cabut", {"code": code, "back": "card"}, csrf=False).status_code == 400
    assert _signed_in(app, "dinas").post("/voucher/cabut", {"code": code}).status_code == 403
    # no hotspotd in this test: the refusal is said on the card's own page
    refused = b.post("/voucher/cabut", {"code": code, "back": "card"})
    assert refused.status_code == 400 and code in refused.get_data(as_text=True)
    gone = codes.display(stock["lost"][0])
    revoked_page = b.get(f"/voucher/kartu/{gone}").get_data(as_text=True)
    assert 'action="/voucher/cabut"' not in revoked_page  # nothing left to revoke


def test_a_batch_note_round_trips_and_is_escaped(app: Flask, engine: Engine, harian: None) -> None:
    b = _signed_in(app)
    evil = "  <script>alert(1)</script>   Bu Siti  "
    made = b.post("/voucher", {"plan": "Harian", "count": "2", "name": "Warung", "note": evil})
    assert made.status_code == 303
    with dbmod.make_sessionmaker(engine)() as tx:
        batch = tx.scalars(select(VoucherBatch)).one()
        assert batch.note == "<script>alert(1)</script> Bu Siti"  # stripped, spaces tidied
        code = tx.scalars(select(Voucher.code)).first()
        batch_id = batch.id
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt; Bu Siti"
    for url in ("/voucher", f"/voucher/kartu/{code}"):
        page = b.get(url).get_data(as_text=True)
        assert escaped in page and "<script>" not in page, url
    rows = list(csv.reader(io.StringIO(b.get(f"/voucher/{batch_id}/csv").get_data(as_text=True))))
    assert rows[0][-2:] == ["batch", "batch_note"]
    assert {r[-1] for r in rows[1:]} == {"<script>alert(1)</script> Bu Siti"}
    too_long = b.post("/voucher", {"plan": "Harian", "count": "1", "note": "x" * 201})
    assert too_long.status_code == 400 and "terlalu panjang" in too_long.get_data(as_text=True)
    blank = b.post("/voucher", {"plan": "Harian", "count": "1", "name": "Kosong", "note": "  "})
    assert blank.status_code == 303
    with dbmod.make_sessionmaker(engine)() as tx:
        kosong = tx.scalar(select(VoucherBatch).where(VoucherBatch.name == "Kosong"))
        assert kosong is not None and kosong.note is None and tx.scalars(select(Voucher)).all()
    assert len(printing.CSV_HEADER) == 9


def test_make_batch_checks_the_note_and_names_batches_in_the_village_zone(
    db: DB, harian: None
) -> None:
    from zoneinfo import ZoneInfo

    with pytest.raises(InvalidInput):
        vouchers.make_batch(db, plan_name="Harian", count=1, created_by="t", now=NOW,
                            note="x" * (vouchers.MAX_NOTE + 1))  # fmt: skip
    batch, _ = vouchers.make_batch(db, plan_name="Harian", count=1, created_by="t", now=NOW,
                                   zone=ZoneInfo("Asia/Jayapura"), note="x" * 200)  # fmt: skip
    assert batch.name == "Harian 2026-11-23 12:00:00"  # 03:00 UTC is noon in WIT
    assert batch.note == "x" * 200


def test_hotspotctl_voucher_make_takes_a_note(ready: Ctl, engine: Engine) -> None:
    out = ok(ready("voucher", "make", "--plan", "Harian", "--count", "1",
                   "--note", "  dijual di  warung  ")).output  # fmt: skip
    # no --batch: named after the plan and the village's time (Asia/Jakarta, 10:00 at 03:00 UTC)
    assert "batch 'Harian 2026-11-23 10:00:00'" in out and "dijual di warung" in out
    with dbmod.make_sessionmaker(engine)() as tx:
        assert tx.scalars(select(VoucherBatch.note)).all() == ["dijual di warung"]
    one_line_error(
        ready("voucher", "make", "--plan", "Harian", "--count", "1", "--note", "x" * 201),
        contains="at most 200",
    )


def test_migration_0006_adds_the_note_and_keeps_the_batches(tmp_path: Path) -> None:
    from alembic import command

    eng = dbmod.make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    schema.upgrade(eng, "0005")
    with eng.begin() as conn:
        conn.execute(text("INSERT INTO plan (name, price_rp, created_at) "
                          "VALUES ('Lama', 3000, '2026-01-01')"))  # fmt: skip
        conn.execute(text("INSERT INTO voucher_batch (name, plan_id, count, code_kind, "
                          "created_by, created_at) VALUES ('Tua', 1, 0, 'alnum', 't', "
                          "'2026-01-01')"))  # fmt: skip
    schema.upgrade(eng, "0006")
    with dbmod.make_sessionmaker(eng).begin() as tx:
        old = tx.scalars(select(VoucherBatch)).one()
        assert (old.name, old.note) == ("Tua", None)
        old.note = "dari dulu"
    cfg = schema._alembic_config()
    with eng.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0005")
    with eng.connect() as conn:
        columns = [row[1] for row in conn.exec_driver_sql("PRAGMA table_info(voucher_batch)")]
        assert "note" not in columns
        assert conn.exec_driver_sql("SELECT name FROM voucher_batch").scalars().all() == ["Tua"]
    eng.dispose()


def test_the_batch_list_links_to_its_cards_and_the_menu_to_the_list(
    app: Flask, stock: dict[str, list[str]], engine: Engine
) -> None:
    b = _signed_in(app)
    page = b.get("/voucher").get_data(as_text=True)
    with dbmod.make_sessionmaker(engine)() as tx:
        pasar = tx.scalar(select(VoucherBatch.id).where(VoucherBatch.name == "Pasar"))
    assert f'href="/voucher/kartu?batch={pasar}"' in page
    nav = page.split("<nav>")[1].split("</nav>")[0]
    assert 'href="/voucher/kartu"' in nav
    listed = b.get(f"/voucher/kartu?batch={pasar}").get_data(as_text=True)
    assert set(_codes_shown(listed)) <= {codes.display(c) for c in stock["many"]}
    assert VoucherState.REVOKED.value not in _tbody(listed)
