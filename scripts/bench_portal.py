#!/usr/bin/env python3
"""Benchmark: the portal after a power cut, when 200 phones come back at once.

Builds its own namespaces: a router (bridge br0 10.66.0.1/16, the real nftables table of
hotspotd, the real `hotspot-portal` process on :8080 with a fresh SQLite database) and client
namespaces holding the phones' addresses. Each phone does, `--rounds` times, what a phone's OS
does: the captive probe (http://connectivitycheck.gstatic.com/generate_204 to an outside
address, DNATed to the portal: 302), then the welcome page (200). All phones start together.
Prints requests per second and p50/p99 latency. Traffic stays between these namespaces; every
loop is bounded; everything is removed at the end.

    sudo .venv/bin/python scripts/bench_portal.py [--phones 200] [--rounds 5] [--namespaces 10]
        [--workers 2] [--threads 6] [--spread SECONDS]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hotspotd import schema  # noqa: E402
from hotspotd.core import db as dbmod  # noqa: E402
from hotspotd.core import plans  # noqa: E402
from hotspotd.core.plans import PlanTerms  # noqa: E402
from hotspotd.net.firewall import NftFirewall  # noqa: E402
from tests.netns.lab import delete_namespace, inside, run  # noqa: E402

PREFIX = f"hsb-{os.getpid()}-"
ROUTER = "10.66.0.1"
OUTSIDE = "198.18.0.2"  # never reached: the DNAT answers for it

PHONES = str(Path(__file__).with_name("bench_portal_phones.py"))


def ns(name: str) -> str:
    return PREFIX + name


def build(namespaces: int, phones: int) -> list[list[str]]:
    run("ip", "netns", "add", ns("r"))
    run("ip", "-n", ns("r"), "link", "set", "lo", "up")
    run("ip", "-n", ns("r"), "link", "add", "br0", "type", "bridge")
    run("ip", "-n", ns("r"), "addr", "add", f"{ROUTER}/16", "dev", "br0")
    run("ip", "-n", ns("r"), "link", "set", "br0", "up")
    groups: list[list[str]] = [[] for _ in range(namespaces)]
    for i in range(phones):
        groups[i % namespaces].append(f"10.66.{1 + i // 250}.{1 + i % 250}")
    for k, ips in enumerate(groups):
        c = ns(f"c{k}")
        run("ip", "netns", "add", c)
        run("ip", "-n", c, "link", "set", "lo", "up")
        run("ip", "-n", ns("r"), "link", "add", f"v{k}", "type", "veth", "peer", "name", "eth0",
            "netns", c)  # fmt: skip
        run("ip", "-n", ns("r"), "link", "set", f"v{k}", "master", "br0", "up")
        run("ip", "-n", c, "link", "set", "eth0", "up")
        for ip in ips:
            run("ip", "-n", c, "addr", "add", f"{ip}/16", "dev", "eth0")
        run("ip", "-n", c, "route", "add", "default", "via", ROUTER)
    return groups


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU time so far of a process and its children (the workers)."""
    user = system = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        pids += [int(c) for c in (task / "children").read_text().split()]
    for p in pids:
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        user, system = user + int(fields[11]) / tick, system + int(fields[12]) / tick
    return user, system


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phones", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--namespaces", type=int, default=10)
    parser.add_argument("--threads", type=int, default=6, help="portal threads per worker")
    parser.add_argument("--workers", type=int, default=2, help="portal worker processes")
    parser.add_argument(
        "--spread", type=float, default=0.0,
        help="seconds over which the phones come back (0: all at the same instant)",
    )  # fmt: skip
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench_portal: needs root (network namespaces)", file=sys.stderr)
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="hsb-"))
    portal: subprocess.Popen[str] | None = None
    firewall: NftFirewall | None = None
    try:
        groups = build(args.namespaces, args.phones)
        url = f"sqlite:///{tmp / 'hotspot.db'}"
        engine = dbmod.make_engine(url)
        schema.upgrade(engine)
        with dbmod.make_sessionmaker(engine).begin() as db:
            from datetime import UTC, datetime

            for name, price, t, d in (("Harian", 5000, 3 * 3600, 10**9),
                                      ("Mingguan", 25000, 20 * 3600, 5 * 10**9)):  # fmt: skip
                plans.add(db, name, PlanTerms(price_rp=price, time_s=t, data_bytes=d),
                          datetime.now(UTC))  # fmt: skip
        config = tmp / "hotspot.toml"
        config.write_text(
            f'[village]\nname = "Desa Uji"\nmessage = "Selamat datang"\n'
            f'[network]\nlan_interface = "br0"\n[portal]\naddress = "{ROUTER}"\nport = 8080\n'
            f'threads = {args.threads}\nworkers = {args.workers}\nruntime_dir = "{tmp / "run"}"\n'
            f'[database]\nurl = "{url}"\n[free]\nenabled = true\n'
            f'[daemon]\ncontrol_socket = "{tmp / "control.sock"}"\n'
        )
        with inside(ns("r")):
            firewall = NftFirewall(lan_interface="br0", portal_ip=ROUTER, portal_port=8080)
            firewall.setup()
        portal = subprocess.Popen(
            ["ip", "netns", "exec", ns("r"), sys.executable, "-c",
             "from portal.serve import run; run()", "--config", str(config)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
        )  # fmt: skip
        assert portal.stdout is not None
        if portal.stdout.readline().strip() != "ready":
            raise RuntimeError("the portal did not start")
        portal_cpu0 = cpu_seconds(portal.pid)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.monotonic() + 1.5
        clients = [
            subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    ns(f"c{k}"),
                    sys.executable,
                    PHONES,
                    ",".join(ips),
                    str(start),
                    str(args.rounds),
                    "8080",
                    OUTSIDE,
                    ROUTER,
                    str(args.spread),
                    str(k),
                    str(args.phones),
                    str(args.namespaces),
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            for k, ips in enumerate(groups)
        ]
        results = [json.loads(c.communicate(timeout=600)[0]) for c in clients]
        elapsed = time.monotonic() - start
        user, system = (b - a for a, b in zip(portal_cpu0, cpu_seconds(portal.pid), strict=True))
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        phones_cpu_s = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        probe = [v for r in results for v in r["probe"]]
        welcome = [v for r in results for v in r["welcome"]]
        errors = sum(r["errors"] for r in results)
        every = probe + welcome
        print(f"{args.phones} phones x {args.rounds} rounds (probe + welcome page), "
              f"coming back over {args.spread:g} s, "
              f"{args.namespaces} client namespaces, "
              f"portal {args.workers} workers x {args.threads} threads, "
              f"{os.cpu_count()} CPUs")  # fmt: skip
        print(f"requests: {len(every)} ok, {errors} failed, in {elapsed:.2f} s "
              f"= {len(every) / elapsed:.0f} requests/s")  # fmt: skip
        per = 1000 / max(1, len(every))
        print(f"CPU: portal {user + system:.2f} s = {(user + system) * per:.2f} ms per request "
              f"({user * per:.2f} user, {system * per:.2f} system); phones (load generator, "
              f"with starting {args.namespaces} Pythons) {phones_cpu_s:.2f} s")  # fmt: skip
        for name, values in (("probe", probe), ("welcome", welcome), ("all", every)):
            print(f"{name:8} p50 {percentile(values, 0.5) * 1000:6.1f} ms   "
                  f"p99 {percentile(values, 0.99) * 1000:6.1f} ms   "
                  f"max {max(values, default=0) * 1000:6.1f} ms")  # fmt: skip
        return 0 if errors == 0 else 1
    finally:
        if portal is not None:
            portal.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                portal.wait(timeout=10)
        if firewall is not None:
            with contextlib.suppress(Exception), inside(ns("r")):
                firewall.teardown()
                firewall.close()
        for line in run("ip", "netns", "list", check=False).stdout.splitlines():
            name = line.split()[0] if line.split() else ""
            if name.startswith(PREFIX):
                delete_namespace(name)
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
