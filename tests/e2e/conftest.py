"""The end-to-end harness: the demo lab (devtools/lab) once per session, and headless
Chromium running inside a phone's namespace, driven by Playwright from the test process.

The browser runs in the phone because Playwright starts it through a two-line wrapper,
`ip netns exec hs-phoneN /usr/bin/chromium "$@"`, given as `executable_path`: the browser's
pipe to Playwright crosses namespaces, its network and resolv.conf are the phone's.
Screenshots go to tests/e2e/artifacts/ (kept after the run, gitignored).

Without root, the lab's tools, chromium or Playwright the tests skip; with CI=true they fail
(tests.conftest.require). The lab is removed after the session even when a test fails.
Reuse: `demo_lab` (names, addresses, vouchers, `hotspotctl`), `phone_page(phone)`, and
`operator_page(viewport)`: the BUMDes manager's browser, in a phone on the residents' Wi-Fi
(OPERATOR_PHONE, not the phone the tests kick), which finds portal.lan through the router's
DNS as any phone does and trusts the lab's certificate by its key alone
(`--ignore-certificate-errors-spki-list`), not every certificate (no `ignore_https_errors`).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devtools import lab as labmod
from tests.conftest import require

ARTIFACTS = Path(__file__).with_name("artifacts")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
FETCH = "import sys, urllib.request as u; print(u.urlopen(sys.argv[1], timeout=5).read().decode())"
VIEWPORT = {"width": 360, "height": 740}  # a cheap Android phone
DESK = {"width": 1280, "height": 800}  # the BUMDes office's laptop
OPERATOR_PHONE = "hs-phone3"  # the manager's phone; hs-phone1 is the one logged in and kicked


@dataclass
class DemoLab:
    lab: labmod.Lab
    info: dict[str, Any]

    def phone(self, n: int) -> str:
        return labmod.PHONES[n - 1]

    def voucher(self, plan: str = "Harian") -> str:
        """A fresh code of a demo plan, made the way the operator makes one."""
        out = self.lab.hotspotctl("voucher", "make", "--plan", plan, "--count", "1", "--json")
        return str(__import__("json").loads(out)[0])

    def in_phone(self, phone: str, *args: str, timeout: float = 30) -> str:
        return labmod.in_ns(phone, *args, timeout=timeout)

    def fetch(self, phone: str, url: str) -> str:
        """A plain HTTP GET from inside the phone (as an app would, not a browser)."""
        return self.in_phone(phone, sys.executable, "-c", FETCH, url)

    @property
    def portal(self) -> str:
        return str(self.info["portal"]["url"])

    @property
    def test_url(self) -> str:
        return str(self.info["upstream"]["test_url"])

    @property
    def operator_url(self) -> str:
        return str(self.info["operator"]["url"])


@pytest.fixture(scope="session")
def demo_lab() -> Iterator[DemoLab]:
    require(os.geteuid() == 0, "needs root (network namespaces)")
    for tool in labmod.REQUIRED_TOOLS:
        require(shutil.which(tool) is not None, f"needs the {tool} command (scripts/setup)")
    lab = labmod.Lab()
    try:
        info = lab.up()
        yield DemoLab(lab, info)
    finally:
        labmod.down(lab.state)


@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Any]:
    """Per module, not per session: Playwright's sync API keeps an asyncio loop running in this
    thread while it lives, and pyroute2 in the kernel tests (same session) needs its own."""
    require(os.path.exists(CHROMIUM), "needs Debian's chromium (scripts/setup --test)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "needs Playwright for Python (scripts/setup --test)")
        raise
    driver = sync_playwright().start()
    try:
        yield driver
    finally:
        driver.stop()


def chromium_in(demo_lab: DemoLab, phone: str) -> Path:
    """The wrapper that starts Chromium inside the phone's namespace."""
    wrapper = demo_lab.lab.state / "bin" / f"chromium-{phone}"
    if not wrapper.exists():
        wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {phone} {CHROMIUM} "$@"\n')
        wrapper.chmod(0o755)
    return wrapper


class Shots:
    """Screenshots named after the test, numbered in the order taken."""

    def __init__(self, test_name: str) -> None:
        self.prefix = re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name)
        self.count = 0
        ARTIFACTS.mkdir(exist_ok=True)
        for old in ARTIFACTS.glob(f"{self.prefix}-*.png"):  # an earlier run's
            old.unlink()

    def __call__(self, page: Any, what: str) -> Path:
        self.count += 1
        path = ARTIFACTS / f"{self.prefix}-{self.count:02d}-{what}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Shots:
    return Shots(request.node.name)


@pytest.fixture
def phone_page(
    demo_lab: DemoLab, playwright_driver: Any, shot: Shots
) -> Iterator[Callable[[str], Any]]:
    """`phone_page("hs-phone1")`: a fresh browser page in that phone at 360x740. Every browser
    is closed after the test, with a last screenshot of each page whatever the outcome."""
    browsers: list[Any] = []
    pages: list[tuple[str, Any]] = []

    def open_page(phone: str) -> Any:
        browser = playwright_driver.chromium.launch(
            executable_path=str(chromium_in(demo_lab, phone)), headless=True, args=CHROMIUM_ARGS
        )
        browsers.append(browser)
        context = browser.new_context(viewport=VIEWPORT, locale="id-ID")
        context.set_default_timeout(15_000)
        page = context.new_page()
        pages.append((phone, page))
        return page

    try:
        yield open_page
    finally:
        for phone, page in pages:
            try:
                shot(page, f"{phone}-last")
            except Exception:  # a dead page must not hide the test's failure
                pass
        for browser in browsers:
            browser.close()


@pytest.fixture
def operator_page(
    demo_lab: DemoLab, playwright_driver: Any, shot: Shots
) -> Iterator[Callable[[dict[str, int]], Any]]:
    """`operator_page(DESK)`: a fresh, signed-out page of the operator's browser in the
    manager's phone, which asks the router's DNS for portal.lan and trusts only the lab's key."""
    cert = labmod.operator.Certificate(
        Path(demo_lab.info["operator"]["certificate"]), demo_lab.lab.state / "operator.key"
    )
    browser = playwright_driver.chromium.launch(
        executable_path=str(chromium_in(demo_lab, OPERATOR_PHONE)),
        headless=True,
        args=[*CHROMIUM_ARGS, f"--ignore-certificate-errors-spki-list={cert.spki_sha256}"],
    )
    pages: list[Any] = []

    def open_page(viewport: dict[str, int]) -> Any:
        context = browser.new_context(viewport=viewport, locale="id-ID")
        context.set_default_timeout(15_000)
        page = context.new_page()
        pages.append(page)
        return page

    try:
        yield open_page
    finally:
        for page in pages:
            try:
                shot(page, "operator-last")
            except Exception:  # a dead page must not hide the test's failure
                pass
        browser.close()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "e2e: the demo lab and a real browser in a phone (root, chromium, Playwright)"
    )
