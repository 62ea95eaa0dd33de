"""A resident's day in a real browser, inside a phone of the demo lab: open a page, land on the
portal, enter a voucher, get the page first asked for; see the time left; log out and be cut
off. And the lab under the browser: DHCP with option 114, DNS, the walled garden by name."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from devtools import lab as labmod
from tests.e2e.conftest import DemoLab, Shots

pytestmark = pytest.mark.e2e

Page = Any
PhonePage = Callable[[str], Page]

LAYOUT_CHECK = """() => {
    const wide = document.documentElement.scrollWidth > window.innerWidth;
    const fields = [...document.querySelectorAll('input, select, textarea')]
        .filter(f => f.type !== 'hidden');
    const unlabelled = fields
        .filter(f => f.labels.length === 0 && !f.getAttribute('aria-label'))
        .map(f => f.name || f.id || f.outerHTML);
    return {wide, scrollWidth: document.documentElement.scrollWidth, unlabelled};
}"""


def assert_phone_friendly(page: Page) -> None:
    """At 360x740 the page does not scroll sideways, and every form field has a label."""
    result = page.evaluate(LAYOUT_CHECK)
    assert not result["wide"], f"{page.url} scrolls sideways ({result['scrollWidth']} px)"
    assert not result["unlabelled"], f"{page.url}: fields without a label: {result['unlabelled']}"


def on_portal(page: Page, demo_lab: DemoLab) -> bool:
    return bool(page.url.startswith(demo_lab.portal))


def fresh_page(page: Page) -> Page:
    """A new page in a new browser context of the same phone: its own connections."""
    context = page.context.browser.new_context(viewport=page.viewport_size, locale="id-ID")
    return context.new_page()


def log_in(page: Page, code: str) -> None:
    page.get_by_label(re.compile("voucher", re.I)).fill(code.lower().replace("-", " "))
    with page.expect_navigation():
        page.locator("form[action$='/login'] button[type=submit]").click()


def test_phones_get_dhcp_leases_with_option_114_and_the_router_as_dns(demo_lab: DemoLab) -> None:
    for phone in labmod.PHONES:
        lease = demo_lab.lab.phone_lease(phone)
        assert lease["router"] == labmod.LAN_ADDR and lease["dns"] == labmod.LAN_ADDR
        assert lease["captive_url"] == demo_lab.info["portal"]["captive_api"]
        assert lease["address"].startswith("10.66.0.")
        resolv = demo_lab.in_phone(phone, "cat", "/etc/resolv.conf")
        assert resolv.strip() == f"nameserver {labmod.LAN_ADDR}"
    resolved = demo_lab.in_phone(
        "hs-phone3", "getent", "ahostsv4", labmod.PORTAL_HOST, labmod.TEST_HOST
    )
    assert labmod.LAN_ADDR in resolved and labmod.NET_WEB in resolved


def test_walled_garden_by_name_opens_without_a_voucher(
    demo_lab: DemoLab, phone_page: PhonePage, shot: Shots
) -> None:
    page = phone_page("hs-phone3")
    page.goto(demo_lab.info["upstream"]["garden_url"])
    assert page.locator("#upstream").inner_text().startswith(f"UPSTREAM {labmod.GARDEN_HOST}")
    shot(page, "garden")
    garden = labmod.in_ns(labmod.ROUTER, "nft", "list", "set", "inet", "hotspot", "garden_dns")
    assert labmod.NET_GARDEN in garden  # put there by dnsmasq's nftset= when the name resolved


def test_voucher_login_reaches_the_page_first_asked_for(
    demo_lab: DemoLab, phone_page: PhonePage, shot: Shots
) -> None:
    page = phone_page("hs-phone1")
    page.goto(demo_lab.test_url + "kabar/hari-ini?x=1")
    assert on_portal(page, demo_lab), page.url
    assert page.locator("form[action$='/login']").is_visible()
    assert_phone_friendly(page)
    shot(page, "portal")
    log_in(page, demo_lab.voucher("Harian"))
    page.wait_for_load_state()
    shot(page, "after-login")
    online = json.loads(demo_lab.lab.hotspotctl("online", "--json"))
    assert "02:66:00:00:00:01" in json.dumps(online), online
    first = demo_lab.test_url + "kabar/hari-ini?x=1"
    assert page.url == first
    assert (
        page.locator("#upstream").inner_text() == f"UPSTREAM {labmod.TEST_HOST}/kabar/hari-ini?x=1"
    )
    shot(page, "first-page")


def test_status_shows_time_left_and_logout_cuts_access(
    demo_lab: DemoLab, phone_page: PhonePage, shot: Shots
) -> None:
    page = phone_page("hs-phone2")
    page.goto(demo_lab.test_url)
    assert on_portal(page, demo_lab)
    log_in(page, demo_lab.voucher("Pelajar"))  # 1 hour of time
    online = fresh_page(page)
    online.goto(demo_lab.test_url)
    assert online.url == demo_lab.test_url, "not online after login"
    api = json.loads(demo_lab.fetch("hs-phone2", demo_lab.info["portal"]["captive_api"]))
    assert api["captive"] is False and 0 < api["seconds-remaining"] <= 3600, api
    online.context.close()

    page.goto(demo_lab.portal + "status")
    assert page.url.startswith(demo_lab.portal + "status")
    status = page.locator("dl.status")
    values = status.locator("dd").all_inner_texts()
    assert "Pelajar" in values[0]
    time_left = values[1]
    assert re.search(r"\d", time_left), f"no time left shown: {values}"
    assert re.search(r"(59|60|1)\s*(menit|min|jam|h)", time_left, re.I), time_left
    assert_phone_friendly(page)
    shot(page, "status")

    with page.expect_navigation():
        page.locator("form[action$='/logout'] button[type=submit]").click()
    assert on_portal(page, demo_lab)
    shot(page, "logged-out")
    for attempt in (page, fresh_page(page)):  # old connections and new ones alike
        attempt.goto(demo_lab.test_url)
        assert on_portal(attempt, demo_lab), f"still online after logout: {attempt.url}"
    shot(page, "cut-off")
    online = json.loads(demo_lab.lab.hotspotctl("online", "--json"))
    assert "02:66:00:00:00:02" not in json.dumps(online), online


def test_a_wrong_code_is_shown_on_a_phone_friendly_page(
    demo_lab: DemoLab, phone_page: PhonePage, shot: Shots
) -> None:
    page = phone_page("hs-phone3")
    page.goto(demo_lab.portal)
    code = demo_lab.voucher("Harian")
    typo = code[:-1] + ("A" if code[-1] != "A" else "B")
    log_in(page, typo)
    assert on_portal(page, demo_lab)
    assert page.locator("form[action$='/login']").is_visible()  # can try again at once
    assert_phone_friendly(page)
    shot(page, "typo")
    page.goto(demo_lab.test_url)
    assert on_portal(page, demo_lab)


def test_the_lab_describes_itself(demo_lab: DemoLab) -> None:
    """What `scripts/demo --json` prints: enough for another tool to drive the lab."""
    info = labmod.load_running()
    assert info is not None
    assert info["namespaces"] == {
        "router": "hs-router",
        "phones": ["hs-phone1", "hs-phone2", "hs-phone3"],
        "upstream": "hs-net",
    }
    assert set(info["vouchers"]) == {"Harian", "Mingguan", "Pelajar"}
    assert all(p["address"] for p in info["phones"])
    assert info["upstream"]["test_url"] == demo_lab.test_url
    operator = info["operator"]
    assert operator["url"] == "https://portal.lan:8444/"
    assert operator["admin"]["user"] == "admin" and len(operator["admin"]["password"]) >= 16
    assert re.fullmatch(r"[0-9A-F]{2}(:[0-9A-F]{2}){31}", operator["fingerprint"])
    # dnsmasq forwards to the lab's resolver only.
    args = Path(f"/proc/{demo_lab.lab.pid('router-dnsmasq')}/cmdline").read_bytes().split(b"\0")
    servers = [a for a in args if a.startswith(b"--server=")]
    assert servers == [f"--server={labmod.NET_DNS}".encode()]
