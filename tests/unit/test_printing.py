"""Voucher cards to print (portal.operator.printing): their texts, QR codes, pages and CSV.

The QR codes are read back with zxing-cpp, from segno's PNG of the same code, after checking
that the SVG on the card draws exactly that code's modules.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import zxingcpp
from flask import Flask
from PIL import Image, ImageDraw
from sqlalchemy.orm import Session

from hotspotd import config
from hotspotd.core import codes, plans, vouchers
from hotspotd.core.models import Voucher
from hotspotd.core.plans import PlanTerms
from hotspotd.errors import NotFound
from portal.operator import printing
from tests.conftest import NOW

BATCH = "Warung Bu Siti"
EVIL = "<script>alert(1)</script>"


@pytest.fixture
def cfg(config_file: Path) -> config.Config:
    base = config.load(config_file)
    return replace(base, village=replace(base.village, operator="BUMDes Maju Bersama"))


@pytest.fixture
def app(cfg: config.Config) -> Flask:
    return printing.standalone_app(cfg)


@pytest.fixture
def made(db: Session) -> list[Voucher]:
    terms = PlanTerms(price_rp=5000, validity_s=86400, time_s=3 * 3600, data_bytes=10**9)
    plans.add(db, "Harian", terms, NOW)
    _, batch = vouchers.make_batch(
        db, plan_name="Harian", count=10, created_by="t", now=NOW, batch_name=BATCH
    )
    db.commit()
    return batch


def make_cards(app: Flask, db: Session, cfg: config.Config, **kw: object) -> list[printing.Card]:
    with app.app_context():
        return printing.cards_for(db, kw.pop("batch", BATCH), cfg, **kw)  # type: ignore[arg-type]


def test_portal_url_and_card_url(cfg: config.Config) -> None:
    assert printing.portal_url(cfg) == "http://10.66.0.1:8080/"
    on_80 = replace(cfg, portal=replace(cfg.portal, port=80))
    assert printing.portal_url(on_80) == "http://10.66.0.1/"
    assert printing.card_url("http://10.66.0.1/", "ABCDEFGHJ") == "http://10.66.0.1/?code=ABCDEFGHJ"
    assert printing.card_url("http://10.66.0.1:8080", "abc-def-ghj") == (
        "http://10.66.0.1:8080/?code=ABCDEFGHJ"
    )


def test_cards_carry_the_plan_texts_and_the_price_as_printed(
    app: Flask, db: Session, cfg: config.Config, made: list[Voucher]
) -> None:
    plans.edit(db, "Harian", {"price_rp": 6000}, None, actor="t", now=NOW)  # cards keep theirs
    cards = make_cards(app, db, cfg)
    assert [c.code for c in cards] == [codes.display(v.code) for v in made]
    for card in cards:
        assert (card.village, card.bumdes) == ("Desa Uji", "BUMDes Maju Bersama")
        assert (card.plan, card.price) == ("Harian", "Rp 5.000")
        assert (card.time, card.data) == ("3 jam", "1 GB")
        assert card.validity == "berlaku 1 hari sejak dipakai"
        assert re.fullmatch(r"[2-9A-Z]{3}-[2-9A-Z]{3}-[2-9A-Z]{3}", card.code)
    assert make_cards(app, db, cfg, batch=made[0].batch_id) == cards  # by id as well
    english = make_cards(app, db, cfg, lang="en")[0]
    assert (english.time, english.validity) == ("3 hours", "valid for 1 day from first use")


def test_no_limit_reads_tanpa_batas(app: Flask, db: Session, cfg: config.Config) -> None:
    plans.add(db, "Bebas", PlanTerms(price_rp=150000, time_s=None, data_bytes=None), NOW)
    vouchers.make_batch(db, plan_name="Bebas", count=1, created_by="t", now=NOW, batch_name="B")
    (card,) = make_cards(app, db, cfg, batch="B")
    assert (card.price, card.time, card.data) == ("Rp 150.000", "tanpa batas", "tanpa batas")
    assert card.validity == "berlaku sampai habis"


def test_a_reprint_leaves_out_what_is_no_longer_unused(
    app: Flask, db: Session, cfg: config.Config, made: list[Voucher]
) -> None:
    vouchers.revoke(db, made[0].code, actor="t", now=NOW)
    vouchers.redeem(db, made[1], NOW)
    shown = {c.code for c in make_cards(app, db, cfg)}
    assert shown == {codes.display(v.code) for v in made[2:]}
    assert len(make_cards(app, db, cfg, unused_only=False)) == len(made)
    with app.app_context(), pytest.raises(NotFound):
        printing.cards_for(db, "no such batch", cfg)
    with app.app_context(), pytest.raises(NotFound):
        printing.cards_for(db, 999, cfg)


def svg_modules(svg: str) -> tuple[int, set[tuple[int, int]]]:
    """The size and dark modules (x, y) the SVG draws: segno's path of horizontal runs."""
    size = re.search(r'viewBox="0 0 (\d+) (\d+)"', svg)
    assert size and size.group(1) == size.group(2)
    (path,) = re.findall(r'<path stroke="#000" d="([^"]+)"', svg)
    dark: set[tuple[int, int]] = set()
    x = y = 0.0
    for op, args in re.findall(r"([MmHh])([-\d. ]+)", path):
        numbers = [float(n) for n in args.split()]
        if op == "M":
            x, y = numbers
        elif op == "m":
            x, y = x + numbers[0], y + numbers[1]
        elif op == "h":
            dark.update((int(x) + i, int(y)) for i in range(int(numbers[0])))
            x += numbers[0]
        else:
            raise AssertionError(op)
    return int(size.group(1)), dark


def decode(image: Image.Image) -> list[str]:
    return [found.text for found in zxingcpp.read_barcodes(image)]


def test_every_cards_qr_code_reads_back_as_its_url(
    app: Flask, db: Session, cfg: config.Config, made: list[Voucher]
) -> None:
    cards = make_cards(app, db, cfg)
    assert len(cards) == len(made)
    for card, voucher in zip(cards, made, strict=True):
        assert card.url == f"http://10.66.0.1:8080/?code={voucher.code}"
        qr = printing.qr_code(card.url)
        assert (qr.error, qr.is_micro) == ("M", False)

        # the SVG on the card is exactly this QR code, with its quiet zone
        assert card.qr_svg == printing.qr_svg(card.url)
        assert card.qr_svg.startswith("<svg") and "<?xml" not in card.qr_svg
        assert "style" not in card.qr_svg and card.url not in card.qr_svg
        size, dark = svg_modules(card.qr_svg)
        border = printing.QR_BORDER
        assert size == len(qr.matrix) + 2 * border
        assert dark == {
            (x + border, y + border)
            for y, row in enumerate(qr.matrix)
            for x, cell in enumerate(row)
            if cell
        }

        # segno's PNG of the same code reads back as the URL, and so does the SVG's drawing
        png = io.BytesIO()
        qr.save(png, kind="png", scale=4, border=border)
        png.seek(0)
        assert decode(Image.open(png)) == [card.url]
        drawn = Image.new("L", (size * 4, size * 4), 255)
        pen = ImageDraw.Draw(drawn)
        for x, y in dark:
            pen.rectangle((x * 4, y * 4, x * 4 + 3, y * 4 + 3), fill=0)
        assert decode(drawn) == [card.url]
        assert codes.check(card.url.rpartition("=")[2]).code == voucher.code


def test_batch_csv(db: Session, made: list[Voucher]) -> None:
    plans.add(db, "=HYPERLINK(1)", PlanTerms(price_rp=1000), NOW)
    vouchers.make_batch(db, plan_name="=HYPERLINK(1)", count=2, created_by="t", now=NOW,
                        batch_name="evil")  # fmt: skip
    vouchers.redeem(db, made[0], NOW + timedelta(hours=1))
    rows = list(csv.reader(io.StringIO(printing.batch_csv(db, BATCH))))
    assert rows[0] == list(printing.CSV_HEADER)
    assert len(rows) == 1 + len(made)
    first = dict(zip(rows[0], rows[1], strict=True))
    assert first == {
        "code": made[0].code,
        "display_code": codes.display(made[0].code),
        "plan": "Harian",
        "price_rp": "5000",
        "state": "active",
        "created_at": "2026-11-23T03:00:00+00:00",
        "first_used_at": "2026-11-23T04:00:00+00:00",
        "batch": BATCH,
        "batch_note": "",
    }
    assert {r[4] for r in rows[2:]} == {"unused"} and {r[6] for r in rows[2:]} == {""}
    later = list(csv.reader(io.StringIO(printing.batch_csv(db, BATCH, now=NOW + timedelta(2)))))
    assert later[1][4] == "expired" and later[2][4] == "unused"
    evil = list(csv.reader(io.StringIO(printing.batch_csv(db, "evil"))))
    assert len(evil) == 3 and {r[2] for r in evil[1:]} == {"'=HYPERLINK(1)"}
    for value in ("+1", "-1", "@x", "=1"):
        assert printing._cell(value) == "'" + value
    assert printing._cell("Harian -1") == "Harian -1" and printing._cell(None) == ""


@pytest.mark.parametrize("render", [printing.render_a4, printing.render_roll])
def test_pages_show_every_code_and_escape_names(
    render: object, db: Session, cfg: config.Config, made: list[Voucher]
) -> None:
    evil_cfg = replace(cfg, village=replace(cfg.village, name=EVIL, operator=EVIL))
    app = printing.standalone_app(evil_cfg)
    with app.test_request_context("/"):
        cards = printing.cards_for(db, BATCH, evil_cfg)
        html = render(cards, title=EVIL)  # type: ignore[operator]
    for voucher in made:
        assert codes.display(voucher.code) in html
    assert html.count("<svg ") == len(made)
    assert "<script" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "style=" not in html and "<style" not in html  # the CSP allows the style sheet only
    sheet = "print-a4.css" if render is printing.render_a4 else "print-roll.css"
    assert f'href="/print-static/{sheet}"' in html
    assert "Cetak dengan Ctrl+P" in html and 'lang="id"' in html
    css = app.test_client().get(f"/print-static/{sheet}")
    assert css.status_code == 200 and css.mimetype == "text/css"
    assert "@page" in css.get_data(as_text=True)
    assert "style-src 'self'" in css.headers["Content-Security-Policy"]


def test_a4_sheets_hold_24_cards_each(db: Session, app: Flask, cfg: config.Config) -> None:
    plans.add(db, "Harian", PlanTerms(price_rp=5000), NOW)
    vouchers.make_batch(db, plan_name="Harian", count=50, created_by="t", now=NOW,
                        batch_name=BATCH)  # fmt: skip
    with app.test_request_context("/"):
        cards = printing.cards_for(db, BATCH, cfg)
        html = printing.render_a4(cards, title=BATCH)
        empty = printing.render_roll([], title=BATCH)
    assert html.count('<section class="sheet">') == 3
    assert html.count('<article class="card">') == 50
    assert "Tidak ada voucher" in empty


def test_a_view_renders_the_cards_with_render_template(
    db: Session, app: Flask, cfg: config.Config, made: list[Voucher]
) -> None:
    @app.get("/batch/<int:batch_id>/a4")
    def a4(batch_id: int) -> str:
        return printing.render_a4(printing.cards_for(db, batch_id, cfg), title=BATCH)

    page = app.test_client().get(f"/batch/{made[0].batch_id}/a4", headers={"Accept-Language": "en"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and codes.display(made[-1].code) in html
    assert "Waktu: 3 jam" in html  # in Bahasa Indonesia whatever the operator's language
