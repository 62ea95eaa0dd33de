"""The village's own pages: market listings and lessons, in the core, the CLI and the portal."""

# ruff: noqa: F811  (pytest fixtures imported from test_portal are used as parameters)

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from hotspotd.core import content
from hotspotd.core import db as dbmod
from hotspotd.core.models import LessonTopic
from hotspotd.errors import InvalidInput, NotFound
from tests.conftest import NOW, Ctl
from tests.unit.test_portal import Phone, app, cards, cfg, phone, rig  # noqa: F401 (pytest fixtures)

REPO = Path(__file__).parents[2]
LESSON = """slug: pupuk-organik
topic: pertanian
title: Membuat pupuk <organik>
summary: Dari sisa dapur.

Kumpulkan sisa sayur.
Aduk tiap minggu.

Yang perlu disiapkan:
- ember
- tanah
Selesai dalam sebulan.
"""


# -- core -------------------------------------------------------------------------------------


def test_lesson_files_parse_and_bodies_become_paragraphs_and_lists() -> None:
    fields = content.parse_lesson(LESSON, position=3)
    assert (fields.slug, fields.topic, fields.position) == ("pupuk-organik", "pertanian", 3)
    assert fields.title == "Membuat pupuk <organik>"  # stored as typed; escaped on output
    assert content.blocks(fields.body) == [
        content.Block("p", ("Kumpulkan sisa sayur. Aduk tiap minggu.",)),
        content.Block("p", ("Yang perlu disiapkan:",)),
        content.Block("ul", ("ember", "tanah")),
        content.Block("p", ("Selesai dalam sebulan.",)),
    ]


def test_every_starter_lesson_in_config_is_valid() -> None:
    files = sorted((REPO / "config" / "lessons").glob("*.txt"))
    parsed = [content.parse_lesson(f.read_text(), source=f.name) for f in files]
    assert {p.topic for p in parsed} == set(LessonTopic)  # one shelf each at least
    assert len({p.slug for p in parsed}) == len(parsed)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("slug: a-b\ntopic: internet\ntitle: T\n", "parted by an empty line"),
        ("slug: a-b\ntopic: internet\n\nbody", "missing title"),
        ("slug: A B\ntopic: internet\ntitle: T\n\nbody", "slug"),
        ("slug: a-b\ntopic: cooking\ntitle: T\n\nbody", "topic: one of"),
        ("slug: a-b\ntopic: internet\ntitle: T\nauthor: me\n\nbody", "line 4"),
        ("slug: a-b\nslug: c-d\ntopic: internet\ntitle: T\n\nbody", "given twice"),
        ("slug: a-b\ntopic: internet\ntitle: " + "x" * 81 + "\n\nbody", "at most 80"),
        ("slug: a-b\ntopic: internet\ntitle: T\n\n   ", "body: must not be empty"),
    ],
)
def test_bad_lesson_files_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        content.parse_lesson(text, source="x.txt")


def test_listing_fields_are_checked(db: Session) -> None:
    ok = content.ListingFields(title=" Keripik ", seller="Bu Sari", contact="+62 812-3456-7890")
    item = content.add_listing(db, ok, NOW)
    assert (item.title, item.contact) == ("Keripik", "+6281234567890")
    assert content.whatsapp_number(item.contact) == "6281234567890"
    assert content.whatsapp_number("081234567890") == "6281234567890"
    for bad, message in [
        (content.ListingFields(title="", seller="x"), "title: must not be empty"),
        (content.ListingFields(title="x", seller="y", price_rp=-1), "price"),
        (content.ListingFields(title="x", seller="y", contact="call me"), "not a phone number"),
        (content.ListingFields(title="a\nb", seller="y"), "one line"),
        (content.ListingFields(title="x", seller="y", description="a\x00b"), "control"),
    ]:
        with pytest.raises(InvalidInput, match=message):
            content.add_listing(db, bad, NOW)
    content.set_listing_hidden(db, item.id, True, NOW)
    with pytest.raises(NotFound):
        content.get_listing(db, item.id)
    assert content.listings(db) == [] and content.counts(db) == (0, 0)


# -- hotspotctl ----------------------------------------------------------------------------


def test_cli_market_and_lessons(ctl: Ctl, engine: Engine, tmp_path: Path) -> None:
    added = ctl("market", "add", "--title", "Gula aren", "--seller", "KWT Melati", "--price",
                "25000", "--unit", "per kg", "--contact", "0812 3456 7890", "--json")  # fmt: skip
    assert added.exit_code == 0, added.output
    item = json.loads(added.output)
    assert item["price_rp"] == 25000 and item["contact"] == "081234567890"
    edited = ctl("market", "edit", str(item["id"]), "--price", "none")
    assert edited.exit_code == 0 and "Gula aren" in edited.output
    assert ctl("market", "hide", str(item["id"])).exit_code == 0
    listed = json.loads(ctl("market", "list", "--json").output)
    assert listed[0]["hidden"] is True and listed[0]["price_rp"] is None
    bad = ctl("market", "add", "--title", "x", "--seller", "y", "--contact", "not-a-phone")
    assert bad.exit_code == 1 and "not a phone number" in bad.output
    assert "no market listing 99" in ctl("market", "remove", "99").output

    good = tmp_path / "a.txt"
    good.write_text(LESSON)
    broken = tmp_path / "b.txt"
    broken.write_text("slug: rusak\n")
    refused = ctl("lesson", "import", str(good), str(broken))
    assert refused.exit_code == 1 and "b.txt" in refused.output
    assert "no lessons yet" in ctl("lesson", "list").output  # one bad file changes nothing
    starters = sorted(str(p) for p in (REPO / "config" / "lessons").glob("*.txt"))
    assert ctl("lesson", "import", str(good), *starters).exit_code == 0
    again = ctl("lesson", "import", str(good))
    assert "replaced lesson 'pupuk-organik'" in again.output
    assert ctl("lesson", "hide", "pupuk-organik").exit_code == 0
    lessons = json.loads(ctl("lesson", "list", "--json").output)
    assert len(lessons) == len(starters) + 1
    assert [x["hidden"] for x in lessons if x["slug"] == "pupuk-organik"] == [True]


# -- the portal ------------------------------------------------------------------------------


@pytest.fixture
def village(engine: Engine) -> dict[str, int]:
    with dbmod.make_sessionmaker(engine).begin() as db:
        shown = content.add_listing(
            db,
            content.ListingFields(
                title="Keripik <script>alert(1)</script>",
                seller="Bu Sari & anak",
                description="Renyah.\n\n- pedas\n- original",
                price_rp=15000,
                unit="per bungkus",
                contact="0812-3456-7890",
            ),
            NOW,
        )
        gone = content.add_listing(db, content.ListingFields(title="Habis", seller="x"), NOW)
        content.set_listing_hidden(db, gone.id, True, NOW)
        content.put_lesson(db, content.parse_lesson(LESSON), NOW)
        return {"shown": shown.id, "hidden": gone.id}


def test_welcome_has_tiles_to_the_market_and_lessons(phone: Phone, village: dict[str, int]) -> None:
    html = phone.get("/").get_data(as_text=True)
    assert 'href="/pasar"' in html and "1 produk" in html
    assert 'href="/belajar"' in html and "1 pelajaran" in html


def test_market_pages_before_login_escaped(phone: Phone, village: dict[str, int]) -> None:
    page = phone.get("/pasar")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Pasar BUMDes" in html
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Rp 15.000" in html and "Bu Sari &amp; anak" in html and "Habis" not in html
    detail = phone.get(f"/pasar/{village['shown']}").get_data(as_text=True)
    assert "<li>pedas</li>" in detail and "<p>Renyah.</p>" in detail
    assert 'href="tel:081234567890"' in detail and 'href="https://wa.me/6281234567890"' in detail
    assert phone.get(f"/pasar/{village['hidden']}").status_code == 404
    assert phone.get("/pasar/999").status_code == 404
    assert phone.get("/pasar/abc").status_code == 404


def test_lesson_pages_before_login(phone: Phone, village: dict[str, int]) -> None:
    shelf = phone.get("/belajar").get_data(as_text=True)
    assert "Pertanian" in shelf and 'href="/belajar/pupuk-organik"' in shelf
    page = phone.get("/belajar/pupuk-organik")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Membuat pupuk &lt;organik&gt;" in html
    assert "<li>ember</li>" in html
    english = phone.get("/belajar", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Farming" in english and "Learn" in english
    for bad in ("/belajar/tidak-ada", "/belajar/..%2Fetc", "/belajar/" + "a" * 300):
        assert phone.get(bad).status_code == 404


def test_village_pages_are_light_and_script_free(phone: Phone, village: dict[str, int]) -> None:
    css = phone.get("/static/portal.css")
    for path in ("/pasar", f"/pasar/{village['shown']}", "/belajar", "/belajar/pupuk-organik"):
        page = phone.get(path)
        assert page.status_code == 200
        assert len(page.data) + len(css.data) < 30_000
        assert b"<script" not in page.data
        assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_empty_market_and_shelf_say_so(phone: Phone, app: Flask) -> None:
    assert "Belum ada produk" in phone.get("/pasar").get_data(as_text=True)
    assert "Belum ada pelajaran" in phone.get("/belajar").get_data(as_text=True)
