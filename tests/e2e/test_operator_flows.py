"""The operator's day in a real browser over HTTPS, on the BUMDes manager's phone on the
residents' Wi-Fi: portal.lan found by the router's DNS, plain http:// sent to https://, sign
in (the certificate the browser is given checked against the fingerprint the lab prints, and
trusted by its key alone); make a batch of cards, print its A4 sheet to PDF and read a card's
QR code back from the paper; a phone logs in with that card and downloads, "online now" shows
its speed, the operator logs it out and the phone is cut off. And every operator page, found
by walking the links of the signed-in pages, screenshotted at phone and desk width into
tests/e2e/artifacts/, each under PAGE_MOST_BYTES of HTML and CSS as the browser loaded them."""

from __future__ import annotations

import json
import os
import pwd
import re
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest

from devtools import lab as labmod
from tests.conftest import require
from tests.e2e.conftest import ARTIFACTS, DESK, OPERATOR_PHONE, VIEWPORT, DemoLab, Shots
from tests.e2e.test_portal_flows import assert_phone_friendly, log_in, on_portal

pytestmark = pytest.mark.e2e

Page = Any
OperatorPage = Callable[[dict[str, int]], Page]
PhonePage = Callable[[str], Page]

SERVED_CERT = (
    "import hashlib, ssl, sys; pem = ssl.get_server_certificate((sys.argv[1], int(sys.argv[2])));"
    "print(hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest())"
)
SPEED = re.compile(r"↓\s*([\d.,]+)\s*(Mbit/s|kbit/s|bit/s)")
FACTORS = {"Mbit/s": 10**6, "kbit/s": 10**3, "bit/s": 1}
RATE_WAIT_S = 40  # the rate is the last two polls' (2 s apart in the lab): seconds, not this
PAGES_MOST = 40  # the walk's bound: far more pages than the UI has
PAGE_MOST_BYTES = 50_000  # HTML + CSS of one page, for a cheap phone on a busy village Wi-Fi
# One kind of page whatever its id or card: /paket/3 and /paket/7, /voucher/kartu/ABC-DEF-GHJ
KINDS = (
    (re.compile(r"/\d+(?=/|$)"), "/N"),
    (re.compile(r"^/voucher/kartu/[^/]+$"), "/voucher/kartu/C"),
)
SVG = re.compile(rb"<svg\b.*?</svg>", re.S)


def admin(demo_lab: DemoLab) -> tuple[str, str]:
    account = demo_lab.info["operator"]["admin"]
    return str(account["user"]), str(account["password"])


def sign_in(page: Page, demo_lab: DemoLab, user: str, password: str) -> None:
    page.goto(demo_lab.operator_url)
    assert urlsplit(page.url).path == "/masuk", page.url  # signed out: the sign-in page first
    page.locator("#username").fill(user)
    page.locator("#password").fill(password)
    with page.expect_navigation():
        page.locator("form[action$='/masuk'] button").click()
    assert urlsplit(page.url).path != "/masuk", page.locator("main").inner_text()


def down_bps(text: str) -> float:
    """'↓ 1,9 Mbit/s' (Indonesian: a decimal comma, a dot between thousands) in bit/s."""
    found = SPEED.search(text)
    assert found, f"no download speed in {text!r}"
    number = float(found.group(1).replace(".", "").replace(",", "."))
    return number * FACTORS[found.group(2)]


def online_row(page: Page, ip: str) -> Any:
    """The row of "online now" whose kick form names exactly this address."""
    return page.locator(f"tbody tr:has(input[name=ip][value='{ip}'])")


def qr_urls(pdf: Path, out: Path) -> list[str]:
    """Every QR code on the printed pages, as the PDF is rendered (poppler) and read (zxing)."""
    import zxingcpp
    from PIL import Image

    subprocess.run(["pdftoppm", "-r", "150", "-png", str(pdf), str(out / "sheet")],
                   check=True, timeout=60)  # fmt: skip
    pages = sorted(out.glob("sheet*.png"))
    assert pages, "pdftoppm made no page"
    shutil.copy(pages[0], ARTIFACTS / "operator-a4-print-page1.png")
    found = []
    for png in pages:
        with Image.open(png) as image:
            found += [code.text for code in zxingcpp.read_barcodes(image)]
    return found


def test_the_operator_ui_serves_the_certificate_the_lab_prints(demo_lab: DemoLab) -> None:
    info = demo_lab.info["operator"]
    assert info["url"] == f"https://{labmod.PORTAL_HOST}:8444/"
    # The certificate a phone on the Wi-Fi gets from portal.lan (the router's DNS) is the one
    # whose fingerprint the lab prints.
    served = labmod.in_ns(OPERATOR_PHONE, sys.executable, "-c", SERVED_CERT, labmod.PORTAL_HOST,
                          "8444").strip()  # fmt: skip
    assert served == info["fingerprint"].replace(":", "").lower()
    # Typed without https://: a 301 to the same host, port and path over HTTPS.
    typed = f"{labmod.PORTAL_HOST}:8444/voucher/kartu?q=abc"
    answer = labmod.in_ns(OPERATOR_PHONE, "curl", "-s", "-o", "/dev/null", "--max-time", "10",
                          "-w", "%{http_code} %{redirect_url}", f"http://{typed}")  # fmt: skip
    assert answer.strip() == f"301 https://{typed}", answer
    said = demo_lab.lab.hotspotctl("operator", "certificate")
    assert f"SHA-256 {info['fingerprint']}" in said
    # lab.json holds the admin's password: root's only.
    assert stat.S_IMODE((demo_lab.lab.state / "lab.json").stat().st_mode) == 0o600
    listed = json.loads(demo_lab.lab.hotspotctl("operator", "list", "--json"))
    assert {"admin": "admin"}.items() <= {o["username"]: o["role"] for o in listed}.items()
    # hotspotd takes operator operations from the operator UI's user, which its config names.
    assert 'operator_user = "hotspot-operator"' in demo_lab.lab.config.read_text()


def test_the_operator_ui_has_its_own_user_and_key(demo_lab: DemoLab) -> None:
    """Its own Unix user, which hotspotd's config names; its key is its own, not the portal's."""
    if demo_lab.info["operator"]["user"] == "root":
        require(False, "user hotspot-operator cannot run this clone: the lab runs it as root")
    tasks = Path(f"/proc/{demo_lab.lab.pid('operator')}/task").iterdir()
    uids = {
        line.split()[1]
        for task in tasks
        for line in (task / "status").read_text().splitlines()
        if line.startswith("Uid:")
    }
    assert uids == {str(pwd.getpwnam("hotspot-operator").pw_uid)}
    key = demo_lab.lab.state / "operator.key"
    assert labmod.operator.readable_by("hotspot-operator", key)
    assert not labmod.operator.readable_by("hotspot", key)


def test_the_managers_phone_types_http_and_lands_on_the_https_sign_in(
    demo_lab: DemoLab, operator_page: OperatorPage, shot: Shots
) -> None:
    page = operator_page(VIEWPORT)
    response = page.goto(f"http://{labmod.PORTAL_HOST}:8444/")
    assert response is not None and response.ok
    landed = urlsplit(page.url)
    assert (landed.scheme, landed.netloc, landed.path) == ("https", "portal.lan:8444", "/masuk")
    hops = []
    request = response.request.redirected_from
    while request is not None:
        answer = request.response()
        hops.append((request.url, answer.status if answer else None))
        request = request.redirected_from
    # Oldest last: plain HTTP got the 301, then the UI's own redirect to its sign-in page.
    assert hops[-1] == (f"http://{labmod.PORTAL_HOST}:8444/", 301), hops
    assert page.evaluate("window.isSecureContext"), "the sign-in page is not over HTTPS"
    shot(page, "http-typed-login")


def test_cards_printed_scanned_used_seen_online_and_kicked(
    demo_lab: DemoLab,
    operator_page: OperatorPage,
    phone_page: PhonePage,
    shot: Shots,
    tmp_path: Path,
) -> None:
    require(shutil.which("pdftoppm") is not None, "needs poppler's pdftoppm (scripts/setup --test)")
    require(shutil.which("curl") is not None, "needs curl (scripts/setup)")
    op = operator_page(DESK)
    sign_in(op, demo_lab, *admin(demo_lab))

    # A batch of three cards, and its A4 sheet printed to PDF.
    name = f"E2E {secrets.token_hex(3)}"
    op.goto(demo_lab.operator_url + "voucher")
    op.locator("#plan").select_option("Harian")
    op.locator("#count").fill("3")
    op.locator("#name").fill(name)
    with op.expect_navigation():
        op.locator("form[action$='/voucher'] button.primary").click()
    made = op.locator("tr.new")
    assert name in made.inner_text()
    shot(op, "batch-made")
    listed = json.loads(demo_lab.lab.hotspotctl("voucher", "list", "--batch", name, "--json"))
    batch_codes = {v["code"].replace("-", "") for v in listed}
    assert len(batch_codes) == 3
    with op.expect_navigation():
        made.locator("a[href$='/a4']").click()
    shot(op, "a4")
    pdf = tmp_path / "cards.pdf"
    op.pdf(path=str(pdf), format="A4", print_background=True)
    shutil.copy(pdf, ARTIFACTS / "operator-a4-print.pdf")

    # The paper's QR codes: the residents' portal with one of the batch's codes each.
    urls = qr_urls(pdf, tmp_path)
    portal = f"http://{labmod.LAN_ADDR}:8080/"
    assert len(urls) == 3 and all(u.startswith(portal + "?code=") for u in urls), urls
    scanned = [parse_qs(urlsplit(u).query)["code"][0] for u in urls]
    assert set(scanned) == batch_codes

    # A phone scans the first card and logs in (logged out first, whatever earlier tests did).
    phone_ip = demo_lab.lab.phone_lease("hs-phone1")["address"]
    labmod.run(demo_lab.lab.bin("hotspotctl"), "--config", str(demo_lab.lab.config), "kick",
               phone_ip, check=False)  # fmt: skip
    phone = phone_page("hs-phone1")
    phone.goto(urls[0])
    field = phone.get_by_label(re.compile("voucher", re.I))
    assert re.sub(r"[^0-9A-Z]", "", field.input_value().upper()) == scanned[0]
    with phone.expect_navigation():
        phone.locator("form[action$='/login'] button[type=submit]").click()
    shot(phone, "phone-logged-in")
    states = json.loads(demo_lab.lab.hotspotctl("voucher", "check", scanned[0], "--json"))
    assert states["state"] == "active", states

    # It downloads; "online now" shows it with a speed above zero.
    got = tmp_path / "big.bin"
    download = subprocess.Popen(
        ["ip", "netns", "exec", "hs-phone1", "curl", "-s", "--max-time", "90", "-o", str(got),
         f"http://{labmod.TEST_HOST}/big?bytes=100000000"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + RATE_WAIT_S
        speed = 0.0
        while True:
            op.goto(demo_lab.operator_url + "online")
            row = online_row(op, phone_ip)
            if row.count() == 1:
                speed = down_bps(row.locator("td").nth(2).inner_text())
                if speed > 0:
                    break
            assert time.monotonic() < deadline, f"no download speed shown for {phone_ip}"
            assert download.poll() is None, "the download ended before a speed was shown"
            time.sleep(1)
        assert 0 < speed <= 4e6, speed  # Harian: 2 Mbit/s down, give or take a burst
        shot(op, "online-downloading")

        # The operator logs it out: the page says so, the row is gone, the phone is cut off.
        with op.expect_navigation():  # the row's form: log out, and block/trust by formaction
            row.locator("form[action$='/kick'] button:not([formaction])").click()
        assert phone_ip in op.locator("p.note.ok").inner_text()
        assert online_row(op, phone_ip).count() == 0
        shot(op, "kicked")
        size = got.stat().st_size
        time.sleep(3)  # what the download still gets now was in flight, not let through
        assert got.stat().st_size - size < 256 * 1024, "the download goes on after the kick"
    finally:
        if download.poll() is None:
            os.killpg(download.pid, signal.SIGTERM)
        download.wait(timeout=10)
    answer = labmod.in_ns("hs-phone1", "curl", "-s", "-o", "/dev/null", "--max-time", "10",
                          "-w", "%{http_code} %{redirect_url}", demo_lab.test_url)  # fmt: skip
    status, _, where = answer.partition(" ")
    assert status == "302" and where.startswith(demo_lab.portal), answer
    phone.goto(demo_lab.test_url)
    assert on_portal(phone, demo_lab), phone.url
    shot(phone, "phone-cut-off")
    online = json.loads(demo_lab.lab.hotspotctl("online", "--json"))
    assert "02:66:00:00:00:01" not in json.dumps(online)
    op.goto(demo_lab.operator_url + "audit")
    assert "ui:admin" in op.locator("main").inner_text()


# -- every page, at phone and desk width ---------------------------------------------------------


@pytest.fixture(scope="module")
def kominfo(demo_lab: DemoLab) -> Iterator[tuple[str, str]]:
    """A kominfo account (reads reports only), made as the village's admin makes one."""
    password = secrets.token_urlsafe(15)
    name = f"kominfo{secrets.token_hex(2)}"
    labmod.operator.add_account(demo_lab.lab.bin("hotspotctl"), demo_lab.lab.config, name,
                                "kominfo", password)  # fmt: skip
    yield name, password


def _slug(pattern: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", pattern.lower()).strip("-") or "home"


def kind_of(path: str) -> str:
    for pattern, kind in KINDS:
        path = pattern.sub(kind, path)
    return path


class Weights:
    """What the browser loaded for each page: its HTML and the stylesheets it links, in bytes.
    Stylesheets are counted whether the browser fetched them again or took them from its cache
    (their size is remembered from the first load); printed pages' QR codes (inline SVG, one
    per card) are left out of the HTML's weight, the rest of the sheet counted."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.loaded: list[Any] = []
        self.css: dict[str, int] = {}
        self.pages: dict[str, dict[str, int]] = {}
        page.on("response", self._loaded)

    def _loaded(self, response: Any) -> None:
        self.loaded.append(response)

    def measure(self, kind: str, document: Any) -> dict[str, int]:
        for response in self.loaded:
            if response.request.resource_type == "stylesheet" and response.ok:
                self.css.setdefault(response.url, len(response.body()))
        self.loaded.clear()
        html = document.body()
        qr = sum(len(svg) for svg in SVG.findall(html))
        links = self.page.eval_on_selector_all(
            "link[rel=stylesheet]", "links => links.map(l => l.href)"
        )
        missing = [href for href in links if href not in self.css]
        assert not missing, f"{kind}: stylesheets not seen loading: {missing}"
        weight = {
            "html": len(html) - qr,
            "qr_svg": qr,
            "css": sum(self.css[href] for href in links),
        }
        weight["total"] = weight["html"] + weight["css"]
        self.pages[kind] = weight
        return weight


def walk(page: Page, demo_lab: DemoLab, weights: Weights) -> Iterator[str]:
    """Every page reachable by a link from the signed-in home page, one per kind (`/voucher/N/a4`
    once, whatever N; one card's history), yielded while the page is open and weighed; downloads
    and other sites left out."""
    base = demo_lab.operator_url
    queue, seen = ["/"], set()
    while queue:
        path = queue.pop(0)
        kind = kind_of(urlsplit(path).path)
        if kind in seen:
            continue
        seen.add(kind)
        assert len(seen) <= PAGES_MOST, f"more than {PAGES_MOST} kinds of page: {sorted(seen)}"
        response = page.goto(urljoin(base, path))
        assert response is not None and response.status == 200, (path, response)
        weights.measure(kind, response)
        yield kind
        for href in page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)"):
            if href.startswith(base) and not href.endswith("/csv"):
                parts = urlsplit(href)
                queue.append(parts.path + (f"?{parts.query}" if parts.query else ""))


@pytest.fixture
def someone_online(demo_lab: DemoLab, phone_page: PhonePage) -> Iterator[tuple[str, str]]:
    """A new batch of twelve Harian cards (the newest batch, so the walk prints it), hs-phone2
    logged in with one of them, for "online now" and that card's history to have rows; logged
    out afterwards. The phone's address and the card's code."""
    phone = "hs-phone2"
    ip = str(demo_lab.lab.phone_lease(phone)["address"])
    kick = (demo_lab.lab.bin("hotspotctl"), "--config", str(demo_lab.lab.config), "kick", ip)
    labmod.run(*kick, check=False)  # whatever an earlier test left
    batch = f"Warung Bu Siti {secrets.token_hex(2)}"
    made = demo_lab.lab.hotspotctl(
        "voucher", "make", "--plan", "Harian", "--count", "12", "--batch", batch, "--json"
    )
    code = str(json.loads(made)[0])
    page = phone_page(phone)
    page.goto(demo_lab.test_url)
    assert on_portal(page, demo_lab), page.url
    log_in(page, code)
    assert ip in demo_lab.lab.hotspotctl("online", "--json"), "hs-phone2 did not log in"
    try:
        yield ip, code
    finally:
        labmod.run(*kick, check=False)


@pytest.mark.parametrize("width", ["phone", "desk"])
def test_every_operator_page_screenshotted(
    demo_lab: DemoLab,
    operator_page: OperatorPage,
    kominfo: tuple[str, str],
    someone_online: tuple[str, str],
    shot: Shots,
    width: str,
) -> None:
    viewport = VIEWPORT if width == "phone" else DESK
    page = operator_page(viewport)
    weights = Weights(page)
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security" in m.text else None)

    signin = page.goto(demo_lab.operator_url)
    weights.measure("/masuk", signin)
    assert_phone_friendly(page)
    shot(page, "login")
    sign_in(page, demo_lab, *admin(demo_lab))
    kinds = []

    def check(kind: str) -> None:
        printed = kind.endswith(("/a4", "/struk"))  # paper: the sheet may be wider than a phone
        if not printed:
            assert page.locator("nav a[aria-current=page], h1").count() >= 1, kind
            if width == "phone":
                assert_phone_friendly(page)
        shot(page, _slug(kind))

    for kind in walk(page, demo_lab, weights):
        kinds.append(kind)
        check(kind)
    for expected in ("/", "/online", "/paket", "/voucher", "/voucher/N/a4", "/voucher/N/struk",
                     "/voucher/kartu", "/voucher/kartu/C", "/perangkat", "/audit", "/pengaturan",
                     "/cadangan"):  # fmt: skip
        assert expected in kinds, f"{expected} not reached by a link: {kinds}"
    # The search of "online now", which no link leads to: the phone by its address; and the
    # history of the card it uses, whichever card the walk took.
    ip, code = someone_online
    found = page.goto(demo_lab.operator_url + f"online?q={ip}")
    assert found is not None and found.status == 200
    assert online_row(page, ip).count() == 1
    weights.measure("/online?q", found)
    check("/online?q=found")
    used = page.goto(demo_lab.operator_url + f"voucher/kartu/{code}")
    assert used is not None and used.status == 200
    assert "02:66:00:00:00:02" in page.locator("main").inner_text()
    weights.measure("/voucher/kartu/C used", used)
    check("/voucher/kartu/used")

    heavy = {k: w for k, w in weights.pages.items() if w["total"] > PAGE_MOST_BYTES}
    (ARTIFACTS / f"weights-{width}.json").write_text(json.dumps(weights.pages, indent=1) + "\n")
    assert not heavy, f"pages over {PAGE_MOST_BYTES} bytes of HTML and CSS: {heavy}"

    missing = page.goto(demo_lab.operator_url + "tidak-ada")
    assert missing is not None and missing.status == 404
    shot(page, "error-404")
    page.context.clear_cookies()

    reader = operator_page(viewport)
    reader.on("console", lambda m: blocked.append(m.text) if "Content Security" in m.text else None)
    sign_in(reader, demo_lab, *kominfo)
    assert reader.locator("nav").count() == 0  # nothing to run, so nothing to go to
    shot(reader, "kominfo-home")
    refused = reader.goto(demo_lab.operator_url + "voucher")
    assert refused is not None and refused.status == 403
    shot(reader, "kominfo-refused-403")
    assert not blocked, f"the Content-Security-Policy blocked something: {blocked}"
