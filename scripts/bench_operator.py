#!/usr/bin/env python3
"""Benchmark: the operator's web UI of a big village — 2,000 devices online, 100,000 vouchers.

Builds everything in a temporary directory: a fresh SQLite database filled by hotspotd's own
core functions (plans, `vouchers.make_batch`, `login.login_voucher` for 2,000 fake MACs and
addresses, on a FakeClock), a Hotspotd with the in-memory kernel fakes (two counter polls, so
every device has a rate) answering a real control socket, and the real operator app signed in
as an admin. Requests go through the whole WSGI app with Flask's test client (no network at
all: nothing is sent anywhere, not even to loopback). Prints, per page, the median and p95 of
`--repeat` requests after a warm-up against its target, the page's weight (HTML and its style
sheets; the A4 sheet also without its QR codes), and the memory growth (RSS and tracemalloc)
over `--memory` more requests of each page.

    .venv/bin/python scripts/bench_operator.py [--repeat 20] [--heavy-repeat 5] [--memory 200]
        [--devices 2000] [--vouchers 100000] [--strict] [--only online --only print ...]

With --strict the exit status is 1 when a target is missed. The voucher list of cards
(/voucher/kartu) is measured when the app has it, and said "not present" otherwise.
`--only` measures some of the figures (online, batches, dashboard, kartu, print: the batch
made and its A4 sheet and roll), for a quick look at one page; without it, all of them. With
`--vouchers 5000` the village is built in seconds rather than minutes.
"""

from __future__ import annotations

import argparse
import gc
import re
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from ipaddress import IPv4Address
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flask.testing import FlaskClient  # noqa: E402
from sqlalchemy import select  # noqa: E402
from werkzeug.test import TestResponse  # noqa: E402

from hotspotd import config, schema  # noqa: E402
from hotspotd.control.server import ControlServer  # noqa: E402
from hotspotd.core import db as dbmod  # noqa: E402
from hotspotd.core import login, operators, plans, vouchers  # noqa: E402
from hotspotd.core.models import Role, Voucher  # noqa: E402
from hotspotd.core.plans import PlanTerms  # noqa: E402
from hotspotd.core.ports import DeviceKey  # noqa: E402
from hotspotd.daemon.service import Hotspotd  # noqa: E402
from portal.operator.app import create_operator_app  # noqa: E402
from tests.fakes import FakeClock, FakeFirewall, FakeShaper  # noqa: E402

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
UI = "https://portal.lan:8444"
LAPTOP = "10.66.0.50"
ADMIN, PASSWORD = "siti", "kopi-susu-2026"
PAGE_WEIGHT_KB = 50
A4_CARDS = 24  # cards on one A4 sheet


def device(n: int) -> DeviceKey:
    """Synthetic phones from 10.66.2.1 on, clear of the router and the laptop."""
    return DeviceKey(
        IPv4Address(f"10.66.{2 + n // 250}.{1 + n % 250}"),
        f"02:77:00:{n >> 16:02x}:{(n >> 8) & 255:02x}:{n & 255:02x}",
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Village:
    """The database, the daemon behind its socket and the operator app, built once."""

    def __init__(self, tmp: Path, devices: int, voucher_count: int) -> None:
        url = f"sqlite:///{tmp / 'hotspot.db'}"
        conf = tmp / "hotspot.toml"
        conf.write_text(
            f'[village]\nname = "Desa Uji"\n[network]\nmanage_forwarding = false\n'
            f'[portal]\nruntime_dir = "{tmp / "portal-run"}"\n[database]\nurl = "{url}"\n'
            f'[daemon]\ncontrol_socket = "{tmp / "run" / "control.sock"}"\n'
        )
        base = config.load(conf)
        self.cfg = replace(base, free=replace(base.free, enabled=True))
        self.engine = dbmod.make_engine(url)
        schema.upgrade(self.engine)
        self.clock = FakeClock(NOW)
        self.setup: dict[str, float] = {}
        maker = dbmod.make_sessionmaker(self.engine)
        start = time.perf_counter()
        with maker.begin() as tx:
            operators.add(tx, ADMIN, Role.ADMIN, PASSWORD, actor="cli:root", now=NOW)
            terms = PlanTerms(price_rp=5000, validity_s=86400, time_s=3 * 3600,
                              data_bytes=10**9, down_bps=2_000_000, up_bps=1_000_000,
                              devices=1, idle_s=900)  # fmt: skip
            plans.add(tx, "Harian", terms, NOW)
            plans.add(tx, "Mingguan", replace(terms, price_rp=25000, validity_s=7 * 86400), NOW)
        for i in range(0, voucher_count, vouchers.MAX_BATCH):
            with maker.begin() as tx:
                vouchers.make_batch(
                    tx, plan_name="Harian" if i % 20000 == 0 else "Mingguan",
                    count=min(vouchers.MAX_BATCH, voucher_count - i), created_by="cli:root",
                    now=NOW, batch_name=f"Stok {i // vouchers.MAX_BATCH + 1:02d}",
                )  # fmt: skip
        self.setup["make vouchers"] = time.perf_counter() - start

        self.fw, self.sh = FakeFirewall(), FakeShaper()
        self.keys = [device(n) for n in range(devices)]
        macs = {k.ip: k.mac for k in self.keys}
        self.daemon = Hotspotd(self.cfg, self.engine, self.fw, self.sh, macs.get, self.clock)
        self.daemon.start()
        start = time.perf_counter()
        with maker.begin() as tx:  # the codes of the first batches, one card per phone
            codes = tx.scalars(select(Voucher.code).order_by(Voucher.id).limit(devices)).all()
            for key, code in zip(self.keys, codes, strict=True):
                login.login_voucher(tx, ip=key.ip, mac=key.mac, code=code, now=NOW)
        self.daemon.reconcile()
        self.setup["log in devices"] = time.perf_counter() - start
        start = time.perf_counter()
        for round_ in (1, 2):  # two polls: every device has a rate
            self.clock.advance(seconds=10)
            for n, key in enumerate(self.keys):
                self.fw.add_traffic(key, up=1000 * round_ + n, down=50_000 * round_ + 7 * n)
            self.daemon.tick()
        self.setup["two polls"] = time.perf_counter() - start
        self.server = ControlServer(self.cfg.daemon.control_socket, self.daemon.handle, group=None)
        self.server.start()
        self.app = create_operator_app(self.cfg, {"TESTING": True}, clock=self.clock)
        self.client: FlaskClient = self.app.test_client()
        signed = self.post("/masuk", {"username": ADMIN, "password": PASSWORD})
        assert signed.status_code == 302, signed.status_code

    def get(self, url: str) -> TestResponse:
        return self.client.get(url, base_url=UI, environ_base={"REMOTE_ADDR": LAPTOP})

    def csrf(self) -> str:
        page = self.get("/masuk")
        if page.status_code != 200:
            page = self.get("/")
        match = re.search(r'name="csrf" value="([^"]+)"', page.get_data(as_text=True))
        assert match, "no CSRF token on the page"
        return match.group(1)

    def post(self, url: str, data: dict[str, str]) -> TestResponse:
        data = {**data, "csrf": self.csrf()}
        return self.client.post(url, data=data, base_url=UI, environ_base={"REMOTE_ADDR": LAPTOP})

    def close(self) -> None:
        self.server.stop()
        self.engine.dispose()


@dataclass
class Figure:
    name: str
    median_ms: float
    p95_ms: float
    target_ms: float | None
    bytes_: int | None = None
    cards: int | None = None  # a print page: its weight is judged per A4 sheet of 24 cards
    cold_ms: float | None = None  # the first request (the warm-up), e.g. QR codes not drawn yet

    @property
    def judged_bytes(self) -> int | None:
        if self.bytes_ is None or not self.cards:
            return self.bytes_
        return self.bytes_ * A4_CARDS // self.cards

    @property
    def ok(self) -> bool:
        return self.target_ms is None or self.p95_ms < self.target_ms


def css_bytes(v: Village, html: str) -> int:
    total = 0
    for href in re.findall(r'<link rel="stylesheet" href="([^"]+)"', html):
        answer = v.get(href)
        total += len(answer.get_data())
        answer.close()
    return total


def without_qr(html: str) -> str:
    return re.sub(r"<svg\b.*?</svg>", "", html, flags=re.S)


def timed(request: Callable[[], TestResponse]) -> tuple[float, TestResponse]:
    start = time.perf_counter()
    answer = request()
    answer.get_data()
    return (time.perf_counter() - start) * 1000, answer


def measure(
    v: Village, name: str, url: str, target: float | None, repeat: int, cards: int | None = None
) -> Figure | None:
    cold, first = timed(lambda: v.get(url))  # the warm-up
    if first.status_code != 200:
        return None
    html = first.get_data(as_text=True)
    weight = len(without_qr(html).encode()) + css_bytes(v, html)
    times = []
    for _ in range(repeat):
        ms, answer = timed(lambda: v.get(url))
        assert answer.status_code == 200, (url, answer.status_code)
        times.append(ms)
    median, p95 = statistics.median(times), percentile(times, 0.95)
    return Figure(name, median, p95, target, weight, cards, cold)


def make_batches(v: Village, repeat: int, size: int) -> tuple[Figure, str]:
    times, location = [], ""
    for i in range(repeat + 1):  # the first is the warm-up
        form = {"plan": "Harian", "count": str(size), "name": f"Bench {i:03d}"}
        ms, answer = timed(lambda: v.post("/voucher", form))  # noqa: B023
        assert answer.status_code == 303, answer.status_code
        location = answer.headers["Location"]
        if i:
            times.append(ms)
    made = re.search(r"made=(\d+)", location)
    assert made, location
    fig = Figure(f"POST /voucher ({size} cards)", statistics.median(times),
                 percentile(times, 0.95), 2000.0)  # fmt: skip
    return fig, made.group(1)


def memory(v: Village, urls: list[str], rounds: int) -> list[tuple[str, int, float, float]]:
    """RSS and traced heap growth over `rounds` more requests of each page; the first half
    of the rounds warms up, the growth is from the middle to the end."""
    out = []
    tracemalloc.start()
    try:
        for url in urls:
            half = max(1, rounds // 2)
            for _ in range(half):
                v.get(url).close()
            gc.collect()
            rss0, (heap0, _peak) = rss_kib(), tracemalloc.get_traced_memory()
            for _ in range(rounds - half):
                v.get(url).close()
            gc.collect()
            rss1, (heap1, _peak) = rss_kib(), tracemalloc.get_traced_memory()
            out.append((url, rounds - half, (rss1 - rss0) / 1024, (heap1 - heap0) / 1024))
    finally:
        tracemalloc.stop()
    return out


SECTIONS = ("online", "batches", "dashboard", "kartu", "print")


def light_pages(devices: int) -> list[tuple[str, str, str, float | None]]:
    """(section, figure, URL, target) of the pages that need no batch made first."""
    last = max(1, -(-devices // 25))  # the quietest page, at 25 devices a page
    return [
        ("online", "GET /online", "/online", 200.0),
        ("online", f"GET /online?page={last}", f"/online?page={last}", 200.0),
        ("online", "GET /online?q= (a MAC's part)", "/online?q=02:77:00:00:07", 200.0),
        ("batches", "GET /voucher (batches)", "/voucher", 200.0),
        ("dashboard", "GET / (dashboard)", "/", None),
    ]


def kartu_urls(batch_id: str) -> list[tuple[str, str]]:
    return [
        ("/voucher/kartu (page 1)", "/voucher/kartu"),
        ("/voucher/kartu?page=1000", "/voucher/kartu?page=1000"),
        ("/voucher/kartu batch+state", f"/voucher/kartu?batch={batch_id}&state=unused"),
        ("/voucher/kartu q=", "/voucher/kartu?q=ABC"),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--vouchers", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20, help="requests per light page")
    parser.add_argument("--heavy-repeat", type=int, default=5,
                        help="batches made and A4 sheets rendered")  # fmt: skip
    parser.add_argument("--memory", type=int, default=200, help="requests per page, memory")
    parser.add_argument("--batch", type=int, default=1000, help="cards in a made batch")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    parser.add_argument("--only", action="append", choices=SECTIONS,
                        help="measure only these figures (repeatable); default: all")  # fmt: skip
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="hsbo-") as tmp:
        start = time.perf_counter()
        v = Village(Path(tmp), args.devices, args.vouchers)
        try:
            print(f"village: {args.devices} devices online, {args.vouchers} vouchers, built in "
                  f"{time.perf_counter() - start:.1f} s ("
                  + ", ".join(f"{k} {s:.1f} s" for k, s in v.setup.items())
                  + "); Flask test client through the whole WSGI app, "
                  "daemon on a real Unix socket")  # fmt: skip
            only = set(args.only or SECTIONS)
            figures: list[Figure | tuple[str, str]] = []
            batch_fig, batch_id = None, ""
            if only & {"kartu", "print"}:
                batch_fig, batch_id = make_batches(v, args.heavy_repeat, args.batch)
            pages = [
                (name, url, target, args.repeat)
                for section, name, url, target in light_pages(args.devices)
                if section in only
            ]
            for name, url, target, repeat in pages:
                figures.append(measure(v, name, url, target, repeat) or (name, "not present"))
            if "kartu" in only:
                for name, url in kartu_urls(batch_id):
                    figures.append(measure(v, name, url, 200.0, args.repeat)
                                   or (name, "not present"))  # fmt: skip
            a4 = f"/voucher/{batch_id}/a4"
            if "print" in only and batch_fig is not None:
                figures.append(batch_fig)
                figures.append(
                    measure(v, f"GET {a4} ({args.batch} QR)", a4, 3000.0, args.heavy_repeat,
                            args.batch) or (a4, "not present")
                )  # fmt: skip
                roll = f"/voucher/{batch_id}/struk"
                figures.append(measure(v, f"GET {roll}", roll, None, args.heavy_repeat, args.batch)
                               or (roll, "not present"))  # fmt: skip
            failed = report(figures)
            light = [url for _n, url, _t, _r in pages]
            if "kartu" in only:
                light += [url for _n, url in kartu_urls(batch_id) if v.get(url).status_code == 200]
            growth = memory(v, light, args.memory) if args.memory > 1 else []
            if "print" in only:
                growth += memory(v, [a4], max(2, args.heavy_repeat * 2))
            print(f"\nmemory (RSS {rss_kib() / 1024:.0f} MiB now), growth over the second half:")
            for url, n, rss, heap in growth:
                print(f"  {url:42} {n:4d} requests  RSS {rss:+7.1f} MiB  traced {heap:+8.1f} KiB")
        finally:
            v.close()
    return 1 if failed and args.strict else 0


def report(figures: list[Figure | tuple[str, str]]) -> bool:
    print(f"\n{'figure':44} {'median':>9} {'p95':>9} {'target':>9}  {'weight':>9}  result")
    failed = False
    for f in figures:
        if isinstance(f, tuple):
            print(f"{f[0]:44} {'':>9} {'':>9} {'':>9}  {'':>9}  {f[1]}")
            continue
        judged = f.judged_bytes
        heavy = judged is not None and judged > PAGE_WEIGHT_KB * 1024
        target = f"{f.target_ms:.0f} ms" if f.target_ms is not None else "-"
        weight = f"{f.bytes_ / 1024:.1f} KB" if f.bytes_ is not None else "-"
        result = "PASS" if f.ok else "FAIL"
        if f.cards:
            weight += f" ({judged / 1024:.1f} KB per sheet)" if judged is not None else ""
        if heavy:
            result += f", page over {PAGE_WEIGHT_KB} KB: FAIL"
        failed |= not f.ok or heavy
        print(f"{f.name:44} {f.median_ms:6.0f} ms {f.p95_ms:6.0f} ms {target:>9}  "
              f"{weight:>9}  {result}")  # fmt: skip
        if f.cards and f.cold_ms is not None and f.target_ms is not None:
            cold_ok = f.cold_ms < f.target_ms  # a new batch's first print draws every QR code
            failed |= not cold_ok
            print(f"{'  first print of a new batch':44} {f.cold_ms:6.0f} ms {'':>9} {target:>9}  "
                  f"{'':>9}  {'PASS' if cold_ok else 'FAIL'}")  # fmt: skip
    print("(p95 against the target; weight = HTML + its style sheets, QR codes left out; a print "
          f"page's weight is judged per A4 sheet of {A4_CARDS} cards)")  # fmt: skip
    return failed


if __name__ == "__main__":
    sys.exit(main())
