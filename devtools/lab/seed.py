"""The demo's data: plans, vouchers, the starter lessons and market listings, loaded through
hotspotctl as an operator would."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from devtools.lab.layout import REPO

DEMO_PLANS: tuple[tuple[str, ...], ...] = (
    ("Harian", "--price", "5000", "--validity", "1d", "--time", "3h", "--data", "1GB",
     "--down", "2M", "--up", "1M", "--devices", "1", "--idle", "15m"),
    ("Mingguan", "--price", "25000", "--validity", "7d", "--data", "5GB", "--down", "4M",
     "--up", "2M", "--devices", "3"),
    ("Pelajar", "--price", "2000", "--validity", "1d", "--time", "1h", "--down", "1M",
     "--up", "512k", "--devices", "1"),
)  # fmt: skip
DEMO_VOUCHERS = {"Harian": 5, "Mingguan": 3, "Pelajar": 3}
# The BUMDes market and lessons the demo's welcome page links to (made-up sellers).
LESSONS = REPO / "config" / "lessons"
DEMO_LISTINGS = [
    ("--title", "Keripik singkong balado", "--seller", "Bu Sari (RT 02)", "--price", "15000",
     "--unit", "per bungkus", "--contact", "0812-0000-0001",
     "--description", "Singkong dari kebun sendiri, digoreng tiap pagi.\n\n- pedas\n- original"),
    ("--title", "Gula aren cetak", "--seller", "KWT Melati", "--price", "25000",
     "--unit", "per kg", "--contact", "0812-0000-0002",
     "--description", "Gula aren asli tanpa campuran. Pesan sehari sebelumnya."),
    ("--title", "Servis pompa air", "--seller", "Pak Darto", "--contact", "0812-0000-0003",
     "--description", "Datang ke rumah, harga sesuai kerusakan."),
]  # fmt: skip


def load(hotspotctl: Callable[..., str], state: Path) -> dict[str, list[str]]:
    """Migrate the database and load the demo data; the vouchers made, by plan, are returned
    and kept in vouchers.json. Files are made with umask 0007, as hotspotd and the portal share
    them."""
    vouchers: dict[str, list[str]] = {}
    old = os.umask(0o007)
    try:
        hotspotctl("db", "upgrade")
        for plan_args in DEMO_PLANS:
            hotspotctl("plan", "add", *plan_args)
        for plan, count in DEMO_VOUCHERS.items():
            extra = ("--digits",) if plan == "Mingguan" else ()
            out = hotspotctl(
                "voucher", "make", "--plan", plan, "--count", str(count),
                "--batch", f"Lab {plan}", "--by", "lab", "--json", *extra,
            )  # fmt: skip
            vouchers[plan] = [str(c) for c in json.loads(out)]
        hotspotctl("lesson", "import", *(str(p) for p in sorted(LESSONS.glob("*.txt"))))
        for listing in DEMO_LISTINGS:
            hotspotctl("market", "add", *listing)
    finally:
        os.umask(old)
    (state / "vouchers.json").write_text(json.dumps(vouchers, indent=2) + "\n")
    return vouchers
