#!/usr/bin/env python3
"""Benchmark: hotspotd's poll (`Hotspotd.tick`) and a login with many devices online.

Builds a fresh SQLite database in a temporary directory and a Hotspotd on a FakeClock, logs
`n` devices in through the daemon's own `login` operation (each its own transaction and
reconcile, as the portal asks), then polls: every device moves some bytes, the clock goes on
by the poll interval and `tick` runs (counters, enforcement, DHCP names). Prints, per size,
the login time per device (median of the last 50 logins, which pay for the most devices
online) and the median of `--polls` polls against the poll interval.

    .venv/bin/python scripts/bench_poll.py [--sizes 200,1000,2000] [--polls 5]
        [--profile] [--kernel]

By default the kernel is tests.fakes' in-memory FakeFirewall and FakeShaper, so the figures
are the daemon's own work. With --kernel (root) the real NftFirewall and TcShaper run in a
throwaway network namespace (a veth pair as the LAN, removed at the end), so the figures
include nft and tc; the bytes then come from the kernel's counters, which see no traffic.
--profile prints cProfile's top functions of one poll at the largest size.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from hotspotd import config, schema  # noqa: E402
from hotspotd.control.server import Peer  # noqa: E402
from hotspotd.core import db as dbmod  # noqa: E402
from hotspotd.core import login, plans, vouchers  # noqa: E402
from hotspotd.core.models import Voucher  # noqa: E402
from hotspotd.core.plans import PlanTerms  # noqa: E402
from hotspotd.core.ports import DeviceKey, Firewall, Shaper  # noqa: E402
from hotspotd.daemon.service import Hotspotd  # noqa: E402
from tests.fakes import FakeClock, FakeFirewall, FakeShaper  # noqa: E402

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
PORTAL = Peer(pid=1, uid=65534, gid=65534)  # a resident's caller, as the portal is
LAN = "10.66.0.0/16"
ROUTER = "10.66.0.1"


def device(n: int) -> DeviceKey:
    """Synthetic phones from 10.66.2.1 on, clear of the router."""
    return DeviceKey(
        IPv4Address(f"10.66.{2 + n // 250}.{1 + n % 250}"),
        f"02:77:00:{n >> 16:02x}:{(n >> 8) & 255:02x}:{n & 255:02x}",
    )


@contextlib.contextmanager
def fake_kernel() -> Iterator[tuple[Firewall, Shaper, FakeFirewall | None]]:
    fw = FakeFirewall()
    yield fw, FakeShaper(), fw


@contextlib.contextmanager
def real_kernel(tag: str) -> Iterator[tuple[Firewall, Shaper, FakeFirewall | None]]:
    """NftFirewall and TcShaper in a namespace of our own, a veth pair as the LAN, an ifb."""
    from hotspotd.net.firewall import NftFirewall
    from hotspotd.net.shaper import TcShaper
    from tests.netns.lab import inside

    name = f"hsbp{os.getpid()}{tag}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        for args in (
            ["link", "set", "lo", "up"],
            ["link", "add", "lan0", "type", "veth", "peer", "name", "lan0p"],  # no dummy here
            ["link", "set", "lan0p", "up"],
            ["addr", "add", f"{ROUTER}/16", "dev", "lan0"],
            ["link", "set", "lan0", "up"],
        ):
            subprocess.run(["ip", "-n", name, *args], check=True)
        with inside(name):
            fw = NftFirewall(lan_interface="lan0", portal_ip=ROUTER, portal_port=8080)
            sh = TcShaper(lan_interface="lan0", lan_prefix=LAN, ifb="ifb0")
            try:
                yield fw, sh, None
            finally:
                with contextlib.suppress(Exception):
                    fw.teardown()
                with contextlib.suppress(Exception):
                    sh.teardown()
                fw.close()
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


class Village:
    def __init__(self, tmp: Path, size: int, fw: Firewall, sh: Shaper) -> None:
        url = f"sqlite:///{tmp / 'hotspot.db'}"
        conf = tmp / "hotspot.toml"
        conf.write_text(
            f'[village]\nname = "Desa Uji"\n[network]\nmanage_forwarding = false\n'
            f'lan_interface = "lan0"\nlan_prefix = "{LAN}"\n'
            f'[portal]\naddress = "{ROUTER}"\nruntime_dir = "{tmp / "portal-run"}"\n'
            f'[database]\nurl = "{url}"\n'
            f'[daemon]\ncontrol_socket = "{tmp / "run" / "control.sock"}"\n'
        )
        base = config.load(conf)
        self.cfg = replace(base, free=replace(base.free, enabled=True))
        self.engine = dbmod.make_engine(url)
        schema.upgrade(self.engine)
        self.clock = FakeClock(NOW)
        maker = dbmod.make_sessionmaker(self.engine)
        with maker.begin() as tx:
            terms = PlanTerms(price_rp=5000, validity_s=86400, time_s=3 * 3600,
                              data_bytes=10**9, down_bps=2_000_000, up_bps=1_000_000,
                              devices=1, idle_s=900)  # fmt: skip
            plans.add(tx, "Harian", terms, NOW)
            vouchers.make_batch(tx, plan_name="Harian", count=size, created_by="cli:root", now=NOW)
        with maker.begin() as tx:
            self.codes = list(tx.scalars(select(Voucher.code).order_by(Voucher.id)))
        self.keys = [device(n) for n in range(size)]
        macs = {k.ip: k.mac for k in self.keys}
        self.fake = fw if isinstance(fw, FakeFirewall) else None
        self.daemon = Hotspotd(self.cfg, self.engine, fw, sh, macs.get, self.clock)
        self.daemon.start()

    def log_in_all(self, bulk: bool = False) -> list[float]:
        """Each device through the `login` operation, as the portal asks: seconds each.

        With `bulk`, all but the last 50 are logged in at once, in one transaction through
        `login.login_voucher` and one reconcile (a quick way to many devices online, not what
        the portal does; each counted as the mean), and the last 50 through the operation."""
        times: list[float] = []
        ahead = max(0, len(self.keys) - 50) if bulk else 0
        if ahead:
            start = time.perf_counter()
            with self.daemon.transaction() as tx:
                for key, code in zip(self.keys[:ahead], self.codes[:ahead], strict=True):
                    login.login_voucher(tx, ip=key.ip, mac=key.mac, code=code,
                                        now=self.clock.now())  # fmt: skip
            self.daemon.reconcile()
            times = [(time.perf_counter() - start) / ahead] * ahead
        for key, code in zip(self.keys[ahead:], self.codes[ahead:], strict=True):
            start = time.perf_counter()
            answer: Any = self.daemon.handle("login", {"ip": str(key.ip), "code": code}, PORTAL)
            times.append(time.perf_counter() - start)
            assert answer["ip"] == str(key.ip), answer
        return times

    def poll(self, round_: int) -> float:
        """One poll interval: traffic on every device, the clock on, then `tick`."""
        if self.fake is not None:
            for n, key in enumerate(self.keys):
                self.fake.add_traffic(key, up=1000 + n, down=50_000 + 7 * n + round_)
        self.clock.advance(seconds=self.cfg.daemon.poll_interval_s)
        start = time.perf_counter()
        self.daemon.tick()
        return time.perf_counter() - start

    def close(self) -> None:
        self.engine.dispose()


def profile_poll(v: Village, round_: int) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    v.poll(round_)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
    print(out.getvalue())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200,1000,2000", help="devices online, comma-separated")
    parser.add_argument("--polls", type=int, default=5, help="polls measured per size")
    parser.add_argument("--profile", action="store_true", help="cProfile one poll at the largest")
    parser.add_argument("--kernel", action="store_true", help="real nft and tc in a netns (root)")
    parser.add_argument(
        "--bulk-login",
        action="store_true",
        help="all but the last 50 devices at once, in one transaction (quick set-up)",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.kernel and os.geteuid() != 0:
        print("--kernel needs root (it builds a network namespace)", file=sys.stderr)
        return 2

    kernel = "real nft + tc in a throwaway netns" if args.kernel else "in-memory fakes"
    print(f"hotspotd poll and login, {kernel}; SQLite in a temporary directory")
    print(f"{'devices':>8} {'login/device':>13} {'(last 50)':>10} {'poll median':>12} "
          f"{'min':>8} {'max':>8} {'interval':>9}")  # fmt: skip
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="hsbp-") as tmp:
            kernel_cm = real_kernel(str(size)) if args.kernel else fake_kernel()
            with kernel_cm as (fw, sh, _fake):
                v = Village(Path(tmp), size, fw, sh)
                try:
                    logins = v.log_in_all(bulk=args.bulk_login)
                    v.poll(0)  # the first poll after the logins: every device's baseline
                    polls = [v.poll(r) for r in range(1, args.polls + 1)]
                    if args.profile and size == max(sizes):
                        profile_poll(v, args.polls + 1)
                finally:
                    v.close()
        print(f"{size:8d} {statistics.mean(logins) * 1000:10.1f} ms "
              f"{statistics.median(logins[-50:]) * 1000:7.1f} ms "
              f"{statistics.median(polls) * 1000:9.0f} ms {min(polls) * 1000:5.0f} ms "
              f"{max(polls) * 1000:5.0f} ms {v.cfg.daemon.poll_interval_s:7d} s")  # fmt: skip
    print("(login/device: mean over all logins, and the median of the last 50; poll: "
          "Hotspotd.tick, counters + enforcement + names, median of --polls)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
