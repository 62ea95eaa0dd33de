"""The captive portal through Flask's test client, against a real daemon on a real socket.

The daemon runs with in-memory kernel fakes (as in test_daemon) and answers on a temporary
control socket; the portal is the app `create_app()` builds from the same config.
"""

from __future__ import annotations

import configparser
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine

from hotspotd import config
from hotspotd.control.server import ControlServer
from hotspotd.core import codes, plans, sessions, vouchers
from hotspotd.core import db as dbmod
from hotspotd.core.plans import PlanTerms
from hotspotd.errors import ClientError
from portal.app import create_app
from portal.web import security
from tests.conftest import NOW
from tests.unit.test_daemon import PHONE1, PHONE2, ROOT, Rig

PORTAL = "http://portal.lan:8080"
PROBES = [
    ("connectivitycheck.gstatic.com", "/generate_204", 204, b""),
    ("clients3.google.com", "/gen_204", 204, b""),
    ("captive.apple.com", "/hotspot-detect.html", 200, b"<BODY>Success</BODY>"),
    ("www.msftconnecttest.com", "/connecttest.txt", 200, b"Microsoft Connect Test"),
    ("www.msftncsi.com", "/ncsi.txt", 200, b"Microsoft NCSI"),
    ("www.msftconnecttest.com", "/redirect", 302, b""),
    ("detectportal.firefox.com", "/canonical.html", 200, b"support.mozilla.org/kb/captive-portal"),
    ("detectportal.firefox.com", "/success.txt", 200, b"success\n"),
]


@pytest.fixture
def cfg(config_file: Path, tmp_path: Path) -> config.Config:
    base = config.load(config_file)
    return replace(
        base,
        village=replace(base.village, message="Pasar desa <b>gratis</b>"),
        daemon=replace(base.daemon, control_socket=tmp_path / "run" / "control.sock"),
        free=replace(base.free, enabled=True),
        network=replace(base.network, manage_forwarding=False),
    )


@pytest.fixture
def cards(engine: Engine) -> list[str]:
    with dbmod.make_sessionmaker(engine).begin() as db:
        plans.add(db, "Harian", PlanTerms(price_rp=5000, validity_s=86400, time_s=3600,
                                          data_bytes=10_000_000, devices=1), NOW)  # fmt: skip
        _, made = vouchers.make_batch(db, plan_name="Harian", count=6, created_by="t", now=NOW)
        return [v.code for v in made]


@pytest.fixture
def rig(cfg: config.Config, engine: Engine, cards: list[str]) -> Iterator[Rig]:
    r = Rig(cfg, engine)
    r.d.start()
    server = ControlServer(cfg.daemon.control_socket, r.d.handle, group=None)
    server.start()
    try:
        yield r
    finally:
        server.stop()


@pytest.fixture
def app(cfg: config.Config, rig: Rig) -> Flask:
    return create_app(cfg, {"TESTING": True}, clock=rig.clock)  # the daemon's clock


def portal_like(cfg: config.Config, app: Flask) -> Flask:
    """Another portal, on the same clock as `app` (and so as the daemon)."""
    return create_app(cfg, {"TESTING": True}, clock=app.extensions["hotspot.clock"])


class Phone:
    """A phone's browser: its own address, cookies, and the CSRF token of the last page."""

    def __init__(self, app: Flask, ip: str) -> None:
        self.client: FlaskClient = app.test_client()
        self.ip = ip

    def get(self, url: str, **kw: Any):  # type: ignore[no-untyped-def]
        kw.setdefault("base_url", PORTAL)
        return self.client.get(url, environ_base={"REMOTE_ADDR": self.ip}, **kw)

    def token(self) -> str:
        page = self.get("/").get_data(as_text=True)
        match = re.search(r'name="csrf" value="([^"]+)"', page)
        assert match
        return match.group(1)

    def post(self, url: str, data: dict[str, str] | None = None, csrf: bool = True, **kw: Any):  # type: ignore[no-untyped-def]
        data = dict(data or {})
        if csrf:
            data["csrf"] = self.token()
        kw.setdefault("base_url", PORTAL)
        return self.client.post(url, data=data, environ_base={"REMOTE_ADDR": self.ip}, **kw)


@pytest.fixture
def phone(app: Flask) -> Phone:
    return Phone(app, str(PHONE1.ip))


def typo_of(code: str) -> str:
    return ("2" if code[0] != "2" else "3") + code[1:]


# -- OS captive detection and the redirect of any URL ---------------------------------------


@pytest.mark.parametrize(("host", "path", "status", "body"), PROBES)
def test_probes_redirect_before_login_and_get_real_answers_after(
    phone: Phone, cards: list[str], host: str, path: str, status: int, body: bytes
) -> None:
    before = phone.get(path, base_url=f"http://{host}")
    assert before.status_code == 302
    assert before.headers["Location"] == f"{PORTAL}/"
    assert before.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in before.headers
    phone.post("/login", {"code": cards[0]})
    after = phone.get(path, base_url=f"http://{host}")
    assert after.status_code == status
    if status == 302:
        assert after.headers["Location"] == f"{PORTAL}/status"
    else:
        assert body in after.data


def test_any_url_goes_to_the_portal_and_back_after_login(phone: Phone, cards: list[str]) -> None:
    html = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    first = phone.get("/berita/hari-ini?x=1&y=%C3%A9", base_url="http://news.example.id",
                      headers=html)  # fmt: skip
    assert first.status_code == 302 and first.headers["Location"] == f"{PORTAL}/"
    # neither a favicon nor an app's background request replaces the page
    phone.get("/favicon.ico", base_url="http://news.example.id", headers={"Accept": "image/*"})
    phone.get("/v1/update", base_url="http://api.example.com")
    phone.client.post("/form", base_url="http://news.example.id", headers=html,
                      environ_base={"REMOTE_ADDR": phone.ip})  # fmt: skip
    done = phone.post("/login", {"code": cards[0]})
    assert done.status_code == 303
    assert done.headers["Location"] == "http://news.example.id/berita/hari-ini?x=1&y=%C3%A9"
    # kept once: the next login goes to the status page
    phone.post("/logout")
    assert phone.post("/login", {"code": cards[0]}).headers["Location"] == "/status"


def test_a_page_with_a_non_ascii_path_comes_back_as_it_was_asked_for(
    phone: Phone, cards: list[str]
) -> None:
    asked = "/kabar/caf%C3%A9/%E2%82%AC?q=%C3%A9&r=a%20b"
    phone.get(asked, base_url="http://news.example.id", headers={"Accept": "text/html"})
    done = phone.post("/login", {"code": cards[0]})
    assert done.headers["Location"] == "http://news.example.id" + asked  # not encoded twice


def test_a_probe_is_not_kept_as_the_page_to_return_to(phone: Phone, cards: list[str]) -> None:
    phone.get("/generate_204", base_url="http://connectivitycheck.gstatic.com")
    assert phone.post("/login", {"code": cards[0]}).headers["Location"] == "/status"


def test_the_portal_hosts_own_pages_are_not_redirected(phone: Phone) -> None:
    for base in (PORTAL, "http://10.66.0.1:8080", "http://portal.lan"):
        assert phone.get("/", base_url=base).status_code == 200
    assert phone.get("/nope").status_code == 404


# -- RFC 8908 -------------------------------------------------------------------------------


def test_captive_api_before_and_after_login(phone: Phone, cards: list[str]) -> None:
    before = phone.get("/api/captive")
    assert before.status_code == 200
    assert before.mimetype == "application/captive+json"
    assert before.headers["Cache-Control"] == "private"
    assert before.get_json() == {
        "captive": True,
        "user-portal-url": f"{PORTAL}/",
        "venue-info-url": f"{PORTAL}/",
    }
    phone.post("/login", {"code": cards[0]})
    after = phone.get("/api/captive").get_json()
    assert after == {
        "captive": False,
        "user-portal-url": f"{PORTAL}/",
        "venue-info-url": f"{PORTAL}/",
        "seconds-remaining": 3600,
        "bytes-remaining": 10_000_000,
        "can-extend-session": True,
    }


def test_captive_api_for_the_free_allowance_and_over_https(app: Flask, cfg: config.Config) -> None:
    p = Phone(app, str(PHONE2.ip))
    p.post("/free")
    got = p.get("/api/captive").get_json()
    assert got["captive"] is False and got["can-extend-session"] is False
    assert got["seconds-remaining"] == 1800 and got["bytes-remaining"] == 100_000_000
    tls = replace(cfg, portal=replace(cfg.portal, tls_cert=Path("/c"), tls_key=Path("/k")))
    https_app = portal_like(tls, app)
    got = Phone(https_app, str(PHONE2.ip)).get("/api/captive").get_json()
    assert got["user-portal-url"] == "https://portal.lan:8443/"


# -- pages ----------------------------------------------------------------------------------


def test_welcome_page(phone: Phone, app: Flask) -> None:
    page = phone.get("/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and '<html lang="id">' in html
    assert "Desa Uji" in html and "Pasar desa &lt;b&gt;gratis&lt;/b&gt;" in html
    assert "Masuk dengan voucher" in html and 'action="/free"' in html
    assert "Rp 5.000" in html and "1 jam" in html and "10 MB" in html
    assert "<script" not in html
    off = replace(app.config["HOTSPOT"], free=replace(app.config["HOTSPOT"].free, enabled=False))
    html = Phone(portal_like(off, app), phone.ip).get("/").get_data(as_text=True)
    assert 'action="/free"' not in html


def test_qr_code_link_fills_the_code_in_escaped(phone: Phone) -> None:
    html = phone.get("/?code=ABC-DEF-GHJ").get_data(as_text=True)
    assert 'value="ABC-DEF-GHJ"' in html
    html = phone.get('/?code="><script>x</script>').get_data(as_text=True)
    assert "<script>x" not in html and "&#34;&gt;&lt;script&gt;" in html


def test_a_printed_cards_qr_url_opens_the_form_with_its_code(
    phone: Phone, cfg: config.Config, cards: list[str]
) -> None:
    from portal.operator import printing

    url = printing.card_url(printing.portal_url(cfg), cards[0])
    assert url.startswith("http://10.66.0.1:8080/?code=")
    page = phone.get(url)  # by the router's address, as the QR code has it
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Masuk dengan voucher" in html
    assert f'name="code" value="{cards[0]}"' in html
    assert phone.post("/login", {"code": cards[0]}).status_code == 303


def test_login_in_any_case_with_spaces_and_the_status_page(phone: Phone, cards: list[str]) -> None:
    typed = " ".join(codes.display(cards[0]).lower().replace("-", " - "))
    assert phone.post("/login", {"code": typed}).status_code == 303
    html = phone.get("/status").get_data(as_text=True)
    assert "Harian" in html and "1 jam" in html and "10 MB" in html
    assert re.search(r"24 Nov 2026 10:00 WIB", html), html  # 03:00 UTC + 1 day, Jakarta
    assert "1 / 1" in html and 'action="/logout"' in html and 'action="/topup"' in html
    assert "Anda sudah online" in phone.get("/").get_data(as_text=True)


def test_typo_is_a_typo_and_unknown_is_unknown(phone: Phone, cards: list[str]) -> None:
    typo = phone.post("/login", {"code": typo_of(cards[0])})
    assert typo.status_code == 400 and "salah ketik" in typo.get_data(as_text=True)
    short = phone.post("/login", {"code": "ABC"})
    assert short.status_code == 400 and "9 huruf dan angka" in short.get_data(as_text=True)
    unknown = phone.post("/login", {"code": codes.make()})
    assert unknown.status_code == 403 and "Tidak ada voucher" in unknown.get_data(as_text=True)


def test_rejected_vouchers_say_why(phone: Phone, cards: list[str], engine: Engine) -> None:
    with dbmod.make_sessionmaker(engine).begin() as db:
        vouchers.revoke(db, cards[5], actor="t", now=NOW)
    page = phone.post("/login", {"code": cards[5]})
    assert page.status_code == 403 and "dibatalkan" in page.get_data(as_text=True)


def test_five_wrong_codes_then_429_even_for_a_good_code(phone: Phone, cards: list[str]) -> None:
    for bad in (typo_of(cards[0]), codes.make(), "XYZ", typo_of(cards[1]), codes.make()):
        assert phone.post("/login", {"code": bad}).status_code in (400, 403)
    stopped = phone.post("/login", {"code": cards[0]})
    assert stopped.status_code == 429
    assert stopped.headers["Retry-After"] == "600"
    assert "Tunggu 10 menit" in stopped.get_data(as_text=True)
    assert phone.get("/api/captive").get_json()["captive"] is True


def test_top_up_and_free_then_voucher(phone: Phone, cards: list[str], app: Flask) -> None:
    phone.post("/login", {"code": cards[0]})
    added = phone.post("/topup", {"code": cards[1].lower()})
    assert added.status_code == 303 and added.headers["Location"] == "/status?added=1"
    html = phone.get("/status?added=1").get_data(as_text=True)
    assert "2 jam" in html and "20 MB" in html and "Kartu sudah ditambahkan" in html
    again = phone.post("/topup", {"code": cards[0]})
    assert again.status_code == 409
    other = Phone(app, str(PHONE2.ip))
    other.post("/free")
    assert "Internet gratis" in other.get("/status").get_data(as_text=True)
    assert other.post("/topup", {"code": cards[2]}).status_code == 303
    assert phone.get("/api/captive").get_json()["can-extend-session"] is True


def test_new_random_mac_keeps_what_was_left_and_the_newest_takes_over(
    phone: Phone, cards: list[str], rig: Rig, app: Flask
) -> None:
    phone.post("/login", {"code": cards[0]})
    rig.clock.advance(seconds=10)
    rig.fw.add_traffic(PHONE1, up=1_000_000, down=1_000_000)
    rig.d.tick()
    rig.macs[PHONE1.ip] = "02:00:00:00:00:77"  # the phone came back with a new MAC
    assert phone.post("/login", {"code": cards[0]}).status_code == 303
    left = phone.get("/api/captive").get_json()
    assert left["seconds-remaining"] == 3590 and left["bytes-remaining"] == 8_000_000
    # the plan allows one device: a second phone with the same card takes over
    other = Phone(app, str(PHONE2.ip))
    assert other.post("/login", {"code": cards[0]}).status_code == 303
    assert phone.get("/api/captive").get_json()["captive"] is True
    assert other.get("/api/captive").get_json()["bytes-remaining"] == 8_000_000


def test_logout(phone: Phone, cards: list[str], rig: Rig) -> None:
    phone.post("/login", {"code": cards[0]})
    out = phone.post("/logout")
    assert out.status_code == 303 and out.headers["Location"] == "/?out=1"
    assert rig.fw.state().authorized == frozenset()
    assert phone.get("/status").headers["Location"] == "/"


def test_free_allowance_off_and_used_up(app: Flask, cfg: config.Config, rig: Rig) -> None:
    off = replace(cfg, free=replace(cfg.free, enabled=False))
    p = Phone(portal_like(off, app), str(PHONE2.ip))
    assert p.post("/free").status_code == 403
    p = Phone(app, str(PHONE2.ip))
    p.post("/free")
    for _ in range(31 * 6):  # 31 minutes of polls
        rig.clock.advance(seconds=10)
        rig.d.tick()
    used = p.post("/free")
    assert used.status_code == 403 and "besok" in used.get_data(as_text=True)


def test_a_reworded_core_message_leaves_the_portals_pages_as_they_were(
    app: Flask, cards: list[str], engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The portal picks its page by the daemon's (code, reason), never by the English text."""
    original = ClientError.__init__

    def reworded(self: ClientError, message: str = "", *, reason: str | None = None) -> None:
        original(self, f"Reworded {len(message)}", reason=reason)

    monkeypatch.setattr(ClientError, "__init__", reworded)
    with dbmod.make_sessionmaker(engine).begin() as db:
        vouchers.revoke(db, cards[5], actor="t", now=NOW)
    phone, other = Phone(app, str(PHONE1.ip)), Phone(app, str(PHONE2.ip))

    def says(page: Any, status: int, text: str) -> None:
        html = page.get_data(as_text=True)
        assert page.status_code == status and text in html and "Reworded" not in html, html

    says(phone.post("/login", {"code": codes.make()}), 403, "Tidak ada voucher dengan kode ini")
    says(phone.post("/login", {"code": cards[5]}), 403, "dibatalkan oleh pengelola")
    assert phone.post("/login", {"code": cards[0]}).status_code == 303
    says(phone.post("/topup", {"code": cards[0]}), 409, "Itu kode yang sedang Anda pakai")
    says(phone.post("/free"), 409, "HP ini sudah online dengan voucher")
    assert other.post("/login", {"code": cards[1]}).status_code == 303
    says(phone.post("/topup", {"code": cards[1]}), 409, "Kode itu sudah dipakai")
    assert other.post("/logout").status_code == 303
    assert other.post("/logout").headers["Location"] == "/?out=1"  # not logged in: nothing to do
    with dbmod.make_sessionmaker(engine).begin() as db:
        sessions.set_flag(db, mac=PHONE2.mac, flag="blocked", value=True, actor="t", now=NOW)
    says(other.post("/login", {"code": cards[2]}), 403, "HP ini diblokir oleh pengelola")
    says(other.post("/free"), 403, "HP ini diblokir oleh pengelola")


def test_daemon_down_is_a_friendly_503(phone: Phone, cards: list[str], cfg: config.Config) -> None:
    down = replace(cfg, daemon=replace(cfg.daemon, control_socket=Path("/nonexistent/s")))
    p = Phone(portal_like(down, phone.client.application), phone.ip)
    page = p.post("/login", {"code": cards[0]})
    assert page.status_code == 503 and "tidak berjalan" in page.get_data(as_text=True)
    assert p.post("/login", {"code": typo_of(cards[0])}).status_code == 400  # still a typo


# -- language -------------------------------------------------------------------------------


def test_indonesian_by_default_english_by_accept_language_or_choice(phone: Phone) -> None:
    assert "Masuk dengan voucher" in phone.get("/").get_data(as_text=True)
    en = phone.get("/", headers={"Accept-Language": "en-US,en;q=0.9"}).get_data(as_text=True)
    assert "Connect with a voucher" in en and '<html lang="en">' in en
    fr = phone.get("/", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert "Masuk dengan voucher" in fr
    chosen = phone.post("/bahasa", {"lang": "en", "next": "/status"})
    assert chosen.status_code == 303 and chosen.headers["Location"] == "/status"
    assert "Connect with a voucher" in phone.get("/").get_data(as_text=True)
    phone.post("/bahasa", {"lang": "id", "next": "//evil.example/"})
    assert "Masuk dengan voucher" in phone.get("/").get_data(as_text=True)


# -- security -------------------------------------------------------------------------------


def test_every_form_needs_its_csrf_token(phone: Phone, cards: list[str], rig: Rig) -> None:
    for path, data in (("/login", {"code": cards[0]}), ("/free", {}), ("/topup", {"code": "x"}),
                       ("/logout", {}), ("/bahasa", {"lang": "en"})):  # fmt: skip
        missing = phone.post(path, data, csrf=False)
        assert missing.status_code == 400, path
        assert "kedaluwarsa" in missing.get_data(as_text=True)
        wrong = phone.post(path, {**data, "csrf": "x" * 43}, csrf=False)
        assert wrong.status_code == 400
    assert rig.fw.state().authorized == frozenset()
    html = phone.get("/").get_data(as_text=True)
    assert html.count('name="csrf"') == 3  # language, voucher, free


def test_security_headers_on_every_answer(phone: Phone) -> None:
    for answer in (phone.get("/"), phone.get("/nope"), phone.post("/login", csrf=False)):
        csp = answer.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "script-src" not in csp
        assert "frame-ancestors 'none'" in csp
        assert answer.headers["X-Content-Type-Options"] == "nosniff"


def test_the_village_name_is_escaped(cfg: config.Config, rig: Rig) -> None:
    evil = replace(cfg, village=replace(cfg.village, name='<img src=x onerror="alert(1)">'))
    html = (
        Phone(create_app(evil, {"TESTING": True}, clock=rig.clock), str(PHONE1.ip))
        .get("/")
        .get_data(as_text=True)
    )
    assert "<img" not in html and "&lt;img src=x" in html


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "//evil.example/",
        "http://evil.example\r\nSet-Cookie: a=b/",
        "http://evil.example/ x",
        "http://user@evil.example/",
        "http://evil.example\\@good/",
        "ftp://evil.example/",
        "http:///nohost",
        "http://" + "a" * 3000 + ".example/",
        "data:text/html,<script>",
    ],
)
def test_unsafe_urls_are_never_redirect_targets(url: str) -> None:
    assert security.safe_original(url) is None


def test_only_local_paths_to_return_to() -> None:
    assert security.local_path("/status") == "/status"
    for bad in ("//evil.example", "/\\evil.example", "https://evil.example", "javascript:x",
                "/x\r\nSet-Cookie: a", None, "", "status"):  # fmt: skip
        assert security.local_path(bad) == "/"


def test_no_redirect_target_from_a_parameter(phone: Phone, cards: list[str]) -> None:
    done = phone.post("/login?next=http://evil.example/", {"code": cards[0],
                      "next": "http://evil.example/"})  # fmt: skip
    assert done.headers["Location"] == "/status"


def test_a_bad_host_header_is_redirected_and_not_kept(phone: Phone, cards: list[str]) -> None:
    answer = phone.get("/x", headers={"Host": "evil.example:99999999@x", "Accept": "text/html"})
    assert answer.status_code == 302 and answer.headers["Location"] == f"{PORTAL}/"
    assert phone.post("/login", {"code": cards[0]}).headers["Location"] == "/status"


@pytest.mark.parametrize(
    ("method", "path", "kw", "status"),
    [
        ("get", "/?code=" + "A" * 41, {}, 400),
        ("get", "/status?code=" + "A" * 5000, {}, 400),
        ("post", "/login", {"data": {"code": "A" * 41}}, 400),
        ("post", "/login", {"data": {}}, 400),
        ("post", "/login", {"data": {"code": "x" * 20000}}, 413),
        ("post", "/bahasa", {"data": {"lang": "klingon"}}, 400),
        ("post", "/bahasa", {"data": {}}, 400),
        ("get", "/login", {}, 405),
        ("put", "/", {}, 405),
        ("get", "/static/../../etc/passwd", {}, 404),
        (
            "post",
            "/login",
            {"data": b"\xff\xfe\x00garbage", "content_type": "application/x-www-form-urlencoded"},
            400,
        ),
        ("post", "/login", {"data": {"code": ["a", "b"]}}, 400),
    ],
)
def test_bad_input_is_a_4xx_never_a_500(
    phone: Phone, method: str, path: str, kw: dict[str, Any], status: int
) -> None:
    client = phone.client
    kw = dict(kw)
    if method == "post" and isinstance(kw.get("data"), dict):
        kw["data"] = {**kw["data"], "csrf": phone.token()}
    answer = getattr(client, method)(
        path, base_url=PORTAL, environ_base={"REMOTE_ADDR": phone.ip}, **kw
    )
    assert answer.status_code == status, answer.get_data(as_text=True)[:500]
    assert "Traceback" not in answer.get_data(as_text=True)


def test_not_on_the_lan_is_refused(app: Flask) -> None:
    outsider = Phone(app, "192.0.2.7")
    assert outsider.post("/free").status_code == 403
    assert outsider.get("/api/captive").get_json()["captive"] is True


# -- light pages ----------------------------------------------------------------------------


def test_each_page_with_its_css_is_under_30_kb(phone: Phone, cards: list[str]) -> None:
    css = phone.get("/static/portal.css")
    assert css.status_code == 200
    pages = [phone.get("/"), phone.post("/login", {"code": typo_of(cards[0])})]
    phone.post("/login", {"code": cards[0]})
    pages.append(phone.get("/status"))
    for page in pages:
        assert len(page.data) + len(css.data) < 30_000
        assert b"<script" not in page.data
        assert b'name="viewport" content="width=device-width' in page.data


def test_compiled_translations_match_the_po_file() -> None:
    from babel.messages.mofile import read_mo
    from babel.messages.pofile import read_po

    folder = Path(__file__).parents[2] / "portal" / "translations" / "id" / "LC_MESSAGES"
    with (folder / "messages.po").open("rb") as f:
        po = read_po(f)
    with (folder / "messages.mo").open("rb") as f:
        mo = read_mo(f)

    def table(catalog: Any) -> dict[Any, Any]:
        return {
            tuple(m.id) if isinstance(m.id, list | tuple) else m.id: tuple(m.string)
            if isinstance(m.string, list | tuple)
            else m.string
            for m in catalog
            if m.id
        }

    wanted, compiled = table(po), table(mo)
    assert wanted == compiled, "run: pybabel compile -d portal/translations"
    assert all(wanted.values()), "every message has an Indonesian translation"


def babel_cfg_methods(root: Path) -> list[tuple[str, str]]:
    """portal/babel.cfg's (pattern, method) pairs, as `pybabel extract -F` reads them."""
    cfg = configparser.ConfigParser()
    cfg.read(root / "portal" / "babel.cfg")
    pairs = (section.split(":", 1) for section in cfg.sections())
    return [(pattern.strip(), method.strip()) for method, pattern in pairs]


def test_babel_cfg_reaches_every_template_and_module() -> None:
    from babel.util import pathmatch

    root = Path(__file__).parents[2]
    methods = babel_cfg_methods(root)
    templates = sorted((root / "portal").rglob("*.html"))
    assert any("residents/templates" in str(t) for t in templates)
    for path in [*templates, *(root / "portal").rglob("*.py")]:
        name = path.relative_to(root).as_posix()
        kind = "jinja2" if path.suffix == ".html" else "python"
        assert any(m == kind and pathmatch(p, name) for p, m in methods), name


def test_every_message_in_the_code_is_in_the_po_file() -> None:
    from babel.messages.extract import extract_from_dir
    from babel.messages.pofile import read_po

    root = Path(__file__).parents[2]
    with (root / "portal/translations/id/LC_MESSAGES/messages.po").open("rb") as f:
        known = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(f) if m.id}
    found: dict[str, str] = {
        msg if isinstance(msg, str) else msg[0]: file
        for file, _line, msg, _comments, _ctx in extract_from_dir(
            root / "portal",
            [(p.removeprefix("portal/"), m) for p, m in babel_cfg_methods(root)],
            keywords={"_": None, "gettext": None, "ngettext": (1, 2)},
        )
    }
    assert any(f.endswith(".html") for f in found.values()), "the templates' messages"
    assert found and set(found) <= known, sorted(set(found) - known)


def test_peer_is_root_in_this_rig() -> None:
    assert ROOT.uid == 0


def test_bad_headers_and_cookies_are_never_a_500(phone: Phone, cards: list[str]) -> None:
    odd = {"Accept-Language": "x" * 5000 + ";q=abc,,;;", "Cookie": "hs=forged.cookie; lang=xx"}
    page = phone.get("/", headers=odd)
    assert page.status_code == 200 and "Masuk dengan voucher" in page.get_data(as_text=True)
    phone.client.set_cookie("hs", "forged-session-value", domain="portal.lan")
    forged = phone.client.post(
        "/login", base_url=PORTAL, data={"code": cards[0], "csrf": "x" * 43},
        environ_base={"REMOTE_ADDR": phone.ip},
    )  # fmt: skip
    assert forged.status_code == 400
    nohost = phone.client.get("/", environ_base={"REMOTE_ADDR": phone.ip, "HTTP_HOST": ""})
    assert nohost.status_code < 500
    noaddr = phone.client.post("/free", base_url=PORTAL, environ_base={"REMOTE_ADDR": ""})
    assert noaddr.status_code == 400  # no CSRF token: refused before anything else
