"""The operator's UI: sign-in, the server-side session and its cookie, roles, the dashboard."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, select

from hotspotd import config
from hotspotd.core import db as dbmod
from hotspotd.core import operators, plans, vouchers
from hotspotd.core.models import AuditEvent, Role
from hotspotd.core.plans import PlanTerms
from portal.operator.app import create_operator_app
from portal.operator.auth import COOKIE
from tests.conftest import NOW
from tests.fakes import FakeClock

UI = "https://portal.lan:8444"
LAPTOP = "10.66.0.50"
PASSWORD = "kopi-susu-2026"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def app(engine: Engine, config_file: Path, clock: FakeClock) -> Flask:
    with dbmod.make_sessionmaker(engine).begin() as tx:
        for name, role in (("siti", Role.ADMIN), ("budi", Role.OPERATOR), ("dinas", Role.KOMINFO)):
            operators.add(tx, name, role, PASSWORD, actor="cli:root", now=NOW)
    return create_operator_app(config.load(config_file), {"TESTING": True}, clock=clock)


class Browser:
    def __init__(self, app: Flask, ip: str = LAPTOP) -> None:
        self.client: FlaskClient = app.test_client()
        self.ip = ip

    def get(self, url: str, **kw: Any):  # type: ignore[no-untyped-def]
        return self.client.get(url, base_url=UI, environ_base={"REMOTE_ADDR": self.ip}, **kw)

    def post(self, url: str, data: dict[str, str], csrf: bool = True):  # type: ignore[no-untyped-def]
        data = dict(data)
        if csrf:
            answer = self.get("/masuk")  # signed in already: sent on to the dashboard
            page = (answer if answer.status_code == 200 else self.get("/")).get_data(as_text=True)
            match = re.search(r'name="csrf" value="([^"]+)"', page)
            assert match
            data["csrf"] = match.group(1)
        return self.client.post(url, data=data, base_url=UI, environ_base={"REMOTE_ADDR": self.ip})

    def sign_in(self, name: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
        return self.post("/masuk", {"username": name, "password": password})

    def token(self) -> str | None:
        cookie = self.client.get_cookie(COOKIE, domain="portal.lan")
        return cookie.value if cookie else None


def test_anonymous_gets_the_sign_in_page(app: Flask) -> None:
    b = Browser(app)
    home = b.get("/")
    assert home.status_code == 302 and home.headers["Location"].startswith("/masuk")
    page = b.get("/masuk")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Masuk" in text and 'type="password"' in text  # Bahasa Indonesia first
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]


def test_signing_in_sets_a_strict_cookie_new_each_time(app: Flask) -> None:
    b = Browser(app)
    answer = b.sign_in("Siti")  # names are not case-sensitive
    assert answer.status_code == 302 and answer.headers["Location"] == "/"
    cookie = next(c for c in answer.headers.getlist("Set-Cookie") if c.startswith(COOKIE + "="))
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=Strict" in cookie
    first = b.token()
    dashboard = b.get("/")
    assert dashboard.status_code == 200
    assert "siti" in dashboard.get_data(as_text=True)
    b.sign_in("siti")
    assert b.token() not in (None, first)  # a new session at every sign-in


def test_a_wrong_password_is_refused_and_audited_without_the_password(
    app: Flask, engine: Engine
) -> None:
    b = Browser(app)
    wrong = b.sign_in("siti", "salah-sekali-123")
    assert wrong.status_code == 401
    assert "siti" in wrong.get_data(as_text=True)  # the name stays in the form
    assert b.token() is None
    unknown = b.sign_in("nobody-here", PASSWORD)
    assert unknown.status_code == 401
    assert _message(unknown) == _message(wrong)  # no telling which names exist
    with dbmod.make_sessionmaker(engine)() as tx:
        rows = tx.scalars(select(AuditEvent).where(AuditEvent.action == "operator.login_failed"))
        details = [f"{r.actor} {r.subject} {r.detail}" for r in rows]
    assert len(details) == 2 and not any("salah-sekali" in d for d in details)


def test_the_form_needs_its_csrf_token(app: Flask) -> None:
    b = Browser(app)
    refused = b.post("/masuk", {"username": "siti", "password": PASSWORD}, csrf=False)
    assert refused.status_code == 400 and b.token() is None


def test_guessing_slows_down(app: Flask, clock: FakeClock) -> None:
    b = Browser(app)
    answers = [b.sign_in("siti", f"tebakan-{i:04d}").status_code for i in range(8)]
    assert 429 in answers
    assert b.sign_in("siti").status_code == 429  # even the right password waits its turn
    clock.advance(seconds=15 * 60 + 1)
    assert b.sign_in("siti").status_code == 302  # backoff, not a lock-out


def test_sign_out_ends_the_session_on_the_server(app: Flask) -> None:
    b = Browser(app)
    b.sign_in("budi")
    token = b.token()
    assert token and b.get("/").status_code == 200
    out = b.post("/keluar", {})
    assert out.status_code == 302 and b.token() is None
    thief = Browser(app, ip="10.66.0.99")
    thief.client.set_cookie(COOKIE, token, domain="portal.lan")
    assert thief.get("/").status_code == 302  # the old cookie opens nothing any more


def test_an_idle_session_ends(app: Flask, clock: FakeClock) -> None:
    b = Browser(app)
    b.sign_in("budi")
    clock.advance(seconds=29 * 60)
    assert b.get("/").status_code == 200
    clock.advance(seconds=29 * 60)  # counted from the last use
    assert b.get("/").status_code == 200
    clock.advance(seconds=31 * 60)
    assert b.get("/").status_code == 302


def test_kominfo_sees_only_the_reports_place(app: Flask) -> None:
    b = Browser(app)
    b.sign_in("dinas")
    page = b.get("/").get_data(as_text=True)
    assert "Laporan" in page and "Penjualan hari ini" not in page


def test_the_dashboard_tells_the_day(app: Flask, engine: Engine) -> None:
    with dbmod.make_sessionmaker(engine).begin() as tx:
        plans.add(tx, "Harian", PlanTerms(price_rp=5000, validity_s=86400), NOW)
        _, made = vouchers.make_batch(tx, plan_name="Harian", count=3, created_by="t", now=NOW)
        for v in made[:2]:
            vouchers.redeem(tx, v, NOW + timedelta(minutes=5))
    b = Browser(app)
    b.sign_in("budi")
    page = b.get("/").get_data(as_text=True)
    assert "Rp 10.000" in page  # two cards first used today
    assert "tidak menjawab" in page  # no hotspotd in this test: said plainly


def _message(answer: Any) -> str:
    match = re.search(r'<p class="error" role="alert">(.*?)</p>', answer.get_data(as_text=True))
    assert match
    return match.group(1)


@pytest.fixture
def harian(engine: Engine) -> None:
    with dbmod.make_sessionmaker(engine).begin() as tx:
        plans.add(tx, "Harian", PlanTerms(price_rp=5000, validity_s=86400, time_s=3 * 3600), NOW)


def test_an_operator_makes_a_batch_and_prints_it(app: Flask, engine: Engine, harian: None) -> None:
    b = Browser(app)
    b.sign_in("budi")
    made = b.post("/voucher", {"plan": "Harian", "count": "5", "name": "Warung Bu Siti"})
    assert made.status_code == 303
    page = b.get("/voucher").get_data(as_text=True)
    assert "Warung Bu Siti" in page
    batch_id = re.search(r'href="/voucher/(\d+)/a4"', page)
    assert batch_id
    with dbmod.make_sessionmaker(engine)() as tx:
        (batch,) = tx.scalars(select(vouchers.VoucherBatch))
        assert (batch.count, batch.created_by) == (5, "ui:budi")  # the account, for the audit
        shown = [vouchers.codes.display(v.code) for v in tx.scalars(select(vouchers.Voucher))]
    sheet = b.get(f"/voucher/{batch_id.group(1)}/a4").get_data(as_text=True)
    assert all(code in sheet for code in shown) and sheet.count("<svg") == 5
    roll = b.get(f"/voucher/{batch_id.group(1)}/struk").get_data(as_text=True)
    assert all(code in roll for code in shown)
    csv = b.get(f"/voucher/{batch_id.group(1)}/csv")
    assert csv.mimetype == "text/csv" and csv.get_data(as_text=True).count("\n") == 6


def test_a_bad_batch_says_what_to_do_and_makes_nothing(
    app: Flask, engine: Engine, harian: None
) -> None:
    b = Browser(app)
    b.sign_in("budi")
    for form, says in (
        ({"plan": "Harian", "count": "lima"}, "bilangan bulat"),
        ({"plan": "Harian", "count": "0"}, "Dari 1 sampai"),
        ({"plan": "Bulanan", "count": "5"}, "Tidak ada paket"),
    ):
        answer = b.post("/voucher", form)
        assert answer.status_code == 400 and says in answer.get_data(as_text=True), form
    with dbmod.make_sessionmaker(engine)() as tx:
        assert tx.scalars(select(vouchers.Voucher)).all() == []


def test_kominfo_cannot_make_or_print_vouchers(app: Flask, engine: Engine, harian: None) -> None:
    b = Browser(app)
    b.sign_in("dinas")
    assert b.get("/voucher").status_code == 403
    assert b.post("/voucher", {"plan": "Harian", "count": "5"}).status_code == 403
    with dbmod.make_sessionmaker(engine).begin() as tx:
        batch, _ = vouchers.make_batch(tx, plan_name="Harian", count=1, created_by="t", now=NOW)
        batch_id = batch.id
    for what in ("a4", "struk", "csv"):
        assert b.get(f"/voucher/{batch_id}/{what}").status_code == 403
    assert "Voucher" not in b.get("/").get_data(as_text=True).split("<main>")[0]  # no menu
    anonymous = Browser(app)
    assert anonymous.get(f"/voucher/{batch_id}/csv").status_code == 302


def test_the_audit_log_is_for_admins_and_filters(app: Flask, engine: Engine, harian: None) -> None:
    from hotspotd.core import audit as audit_mod

    with dbmod.make_sessionmaker(engine).begin() as tx:
        for i in range(60):
            audit_mod.record(tx, NOW + timedelta(minutes=i), "cli:root", "voucher.revoke", f"C{i}")
        audit_mod.record(tx, NOW, "ui:<b>x</b>", "device.block", "02:00:00:00:00:01", "<script>")
    admin = Browser(app)
    admin.sign_in("siti")
    first = admin.get("/audit").get_data(as_text=True)
    assert "C59" in first and "C9" not in first and "Lebih lama" in first  # newest first, paged
    older = admin.get("/audit?page=2").get_data(as_text=True)
    assert "C9" in older
    blocks = admin.get("/audit?action=device.block").get_data(as_text=True).split("<tbody>")[1]
    assert "02:00:00:00:00:01" in blocks and "C59" not in blocks
    assert "&lt;script&gt;" in blocks and "<script>" not in blocks  # escaped, every field
    assert "ui:&lt;b&gt;x&lt;/b&gt;" in blocks
    mine = admin.get("/audit?actor=siti").get_data(as_text=True).split("<tbody>")[1]
    assert "operator.login" in mine and "C59" not in mine  # her sign-in, nobody else's rows
    odd = admin.get("/audit?day=kemarin&actor=%27;drop").get_data(as_text=True)
    assert "tidak dipahami" in odd  # said, and left out, never an error page
    for who in ("budi", "dinas"):
        b = Browser(app)
        b.sign_in(who)
        assert b.get("/audit").status_code == 403
    assert admin.post("/audit", {}).status_code == 405  # nothing to write, ever
