#!/usr/bin/env python3
"""Kernel-layer benchmark: what reconcile, counters and the packet path cost at 100 / 1,000 /
5,000 devices, measured in throwaway network namespaces (root; nothing leaves the machine).

    sudo python3 scripts/bench_kernel.py [--repeat 3] [--sizes 100,1000,5000]

Figures are medians of --repeat runs. "apply" is what the daemon pays when it knows the change
(a login, a kick); "reconcile" also reads the kernel's state and plans (the timer's job).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hotspotd.core.ports import DeviceKey, FirewallChange, Rate
from hotspotd.core.reconcile import Desired, apply_plan, plan, reconcile
from hotspotd.net.firewall import NftFirewall
from hotspotd.net.nft import NftCommand
from hotspotd.net.shaper import TcShaper
from tests.netns.lab import (
    LAN_PREFIX,
    PHONE1,
    PORTAL_PORT,
    ROUTER_LAN,
    UPSTREAM,
    Lab,
    inside,
)

PLAN_RATE = Rate(down_bps=4_000_000, up_bps=1_000_000)
FAST = Rate(down_bps=20_000_000_000, up_bps=20_000_000_000)  # the measured phone: never limited
UPLINK = FAST


def device(n: int) -> DeviceKey:
    """Synthetic devices from 10.66.2.1 on, clear of the lab's phones and router."""
    return DeviceKey(
        IPv4Address(f"10.66.{2 + n // 250}.{1 + n % 250}"),
        f"02:77:00:{n >> 16:02x}:{(n >> 8) & 255:02x}:{n & 255:02x}",
    )


def desired(count: int, with_phone: bool = False) -> Desired:
    authorized = {device(n): PLAN_RATE for n in range(count - (1 if with_phone else 0))}
    if with_phone:
        assert PHONE1.ip is not None
        authorized[DeviceKey(IPv4Address(PHONE1.ip), PHONE1.mac)] = FAST
    return Desired(authorized=authorized, garden=frozenset({IPv4Address("198.18.0.3")}))


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return (time.perf_counter() - start) * 1000


class Router:
    def __init__(self, runner: bool = True) -> None:
        kwargs = {} if runner else {"runner_factory": NftCommand}
        self.firewall = NftFirewall(
            lan_interface="lan0", portal_ip=ROUTER_LAN, portal_port=PORTAL_PORT, **kwargs
        )
        self.shaper = TcShaper(lan_interface="lan0", lan_prefix=LAN_PREFIX, ifb="ifb0")
        self.firewall.setup()
        self.shaper.setup(UPLINK)

    def close(self) -> None:
        self.firewall.teardown()
        self.firewall.close()
        self.shaper.teardown()


def one_round(router: Router, count: int) -> dict[str, float]:
    fw, sh = router.firewall, router.shaper
    want = desired(count)
    more = Desired({**want.authorized, device(count + 10): PLAN_RATE}, garden=want.garden)
    figures = {
        "reconcile from empty": timed(lambda: reconcile(fw, sh, want)),
        "second reconcile (no-op)": timed(lambda: reconcile(fw, sh, want)),
    }
    add = plan(more, fw.state(), sh.state())
    figures["apply: add one"] = timed(lambda: apply_plan(fw, sh, add))
    remove = plan(want, fw.state(), sh.state())
    figures["apply: remove one"] = timed(lambda: apply_plan(fw, sh, remove))
    figures["reconcile: add one"] = timed(lambda: reconcile(fw, sh, more))
    figures["reconcile: remove one"] = timed(lambda: reconcile(fw, sh, want))
    figures["read all counters"] = timed(fw.counters)
    figures["read firewall state"] = timed(fw.state)
    figures["read shaper state"] = timed(sh.state)
    return figures


def control_plane(count: int, repeat: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {}
    for _ in range(repeat):
        router = Router()
        try:
            for name, ms in one_round(router, count).items():
                samples.setdefault(name, []).append(ms)
        finally:
            router.close()
    return {name: statistics.median(values) for name, values in samples.items()}


def one_change(firewall: NftFirewall, count: int) -> tuple[float, float]:
    firewall.apply(FirewallChange(authorize=frozenset(map(device, range(count)))))
    key = frozenset({device(count + 10)})
    add = timed(lambda: firewall.apply(FirewallChange(authorize=key)))
    delete = timed(lambda: firewall.apply(FirewallChange(deauthorize=key)))
    return add, delete


def nft_backends(count: int, repeat: int) -> dict[str, float]:
    """One authorize / deauthorize on top of `count`: libnftables context vs the nft program."""
    result: dict[str, float] = {}
    for label, lib in (("libnftables", True), ("nft program", False)):
        adds, dels = [], []
        for _ in range(repeat):
            router = Router(runner=lib)
            try:
                add, delete = one_change(router.firewall, count)
            finally:
                router.close()
            adds.append(add)
            dels.append(delete)
        result[f"{label}: add one"] = statistics.median(adds)
        result[f"{label}: delete one"] = statistics.median(dels)
    return result


def data_plane(lab: Lab, count: int, seconds: int) -> dict[str, float]:
    """RTT and TCP throughput of phone 1 through the router with `count` devices loaded."""
    router = Router()
    try:
        reconcile(router.firewall, router.shaper, desired(count, with_phone=True))
        lab.agent("p1", "rtt", UPSTREAM, "20", timeout=2)  # warm up: ARP, caches, conntrack
        rtt = lab.agent("p1", "rtt", UPSTREAM, "300", timeout=2)
        proc = lab.exec(
            "p1", "iperf3", "-c", UPSTREAM, "-p", "5201", "-t", str(seconds), "-O", "1", "-J",
            timeout=seconds + 30,
        )  # fmt: skip
        gbit = json.loads(proc.stdout)["end"]["sum_received"]["bits_per_second"] / 1e9
        return {"rtt_us": float(rtt["median_us"]), "lost": float(rtt["lost"]), "gbit": gbit}
    finally:
        router.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", default="100,1000,2000,5000")
    parser.add_argument("--seconds", type=int, default=5, help="iperf3 duration")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    for tool in ("ip", "nft", "tc", "iperf3", "timeout"):
        if shutil.which(tool) is None:
            print(f"bench_kernel: needs the {tool} command", file=sys.stderr)
            return 2
    lab = Lab("bench-", offloads=True, iperf=True)
    lab.build()
    try:
        with inside(lab.ns("r")):
            print(f"control plane, median of {args.repeat} (ms)")
            rows = {size: control_plane(size, args.repeat) for size in sizes}
            names = list(next(iter(rows.values())))
            print(f"{'':28}" + "".join(f"{size:>10}" for size in sizes))
            for name in names:
                print(f"{name:28}" + "".join(f"{rows[size][name]:10.1f}" for size in sizes))
            print(f"\nfirewall alone, one change on top of {max(sizes)} devices (ms)")
            for name, ms in nft_backends(max(sizes), args.repeat).items():
                print(f"  {name:28}{ms:8.2f}")
            print("\npacket path: phone 1 to the upstream through the router")
            for count in (5, 5000):
                figures = [data_plane(lab, count, args.seconds) for _ in range(args.repeat)]
                rtt = statistics.median(f["rtt_us"] for f in figures)
                gbit = statistics.median(f["gbit"] for f in figures)
                lost = sum(f["lost"] for f in figures)
                print(f"  {count:5} devices: ping RTT {rtt:6.0f} us (lost {lost:.0f}),"
                      f" TCP {gbit:5.2f} Gbit/s")  # fmt: skip
    finally:
        lab.destroy()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except subprocess.TimeoutExpired as exc:
        print(f"timed out: {exc}", file=sys.stderr)
        sys.exit(1)
