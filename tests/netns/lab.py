"""A throwaway village network in namespaces: router, switch, phones, a rogue, the internet.

    phone1 (10.66.1.2)  ┐
    phone2 (10.66.1.3)  ├─ switch (bridge) ─ lan0 [router] wan0 ─ upstream 198.18.0.2/.3
    rogue  (no address) ┘                 10.66.0.1/16   198.18.0.1      HTTP, TCP, DNS (iperf3)

Names are `hst-<pid>-<role>`, so parallel runs never clash, and a run can tell its own leftovers
from a crashed earlier run (the pid is gone) and remove them. Traffic stays between these
namespaces: 198.18.0.0/24 is the benchmarking range, and nothing is routed to the host. It is
also outside the private ranges the firewall never forwards phones to, so the upstream stands
for the internet as it is, with no allow list.
Used by tests/netns and scripts/bench_kernel.py.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

AGENT = str(Path(__file__).with_name("agent.py"))
PREFIX = "hst-"
_LEFTOVER = re.compile(rf"^{PREFIX}(\d+)-")
CLONE_NEWNET = 0x40000000

ROUTER_LAN = "10.66.0.1"
ROUTER_WAN = "198.18.0.1"
LAN_PREFIX = "10.66.0.0/16"
UPSTREAM = "198.18.0.2"
GARDEN_HOST = "198.18.0.3"
UPSTREAM6 = "2001:db8:18::2"
PORTAL_PORT = 8080
TCP_PORT = 9000
IPERF_PORTS = (5201, 5202)


@dataclass(frozen=True)
class Host:
    role: str
    ip: str | None
    mac: str
    ip6: str | None


PHONE1 = Host("p1", "10.66.1.2", "02:66:00:00:01:02", "fd66::2")
PHONE2 = Host("p2", "10.66.1.3", "02:66:00:00:01:03", "fd66::3")
ROGUE = Host("rogue", None, "02:66:00:00:0e:01", None)

REQUIRED_TOOLS = ("ip", "nft", "tc")


def run(*args: str, timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {proc.stderr.strip()}")
    return proc


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def delete_namespace(name: str) -> None:
    """Stop what still runs in one of our namespaces, then remove it."""
    pids = run("ip", "netns", "pids", name, check=False).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    run("ip", "netns", "del", name, check=False)


def clean_leftovers() -> list[str]:
    """Remove namespaces of earlier runs of ours that died without cleaning up."""
    removed = []
    for line in run("ip", "netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        match = _LEFTOVER.match(name)
        if match and not _pid_alive(int(match.group(1))):
            delete_namespace(name)
            removed.append(name)
    return removed


_libc = ctypes.CDLL(None, use_errno=True)


@contextlib.contextmanager
def inside(name: str) -> Iterator[None]:
    """Run this thread (and the processes it starts) in namespace `name` for a while."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns {name}: {os.strerror(err)}")
        yield
    finally:
        if _libc.setns(home, CLONE_NEWNET) != 0:  # pragma: no cover - would leave us lost
            raise OSError(ctypes.get_errno(), "cannot return to the original namespace")
        os.close(home)
        os.close(target)


class Lab:
    def __init__(self, tag: str = "", offloads: bool = False, iperf: bool = False) -> None:
        """`offloads=False` makes every sender emit MTU-sized packets, as phones on Wi-Fi do;
        with veth's 64 KB GSO bursts a 2 Mbit/s class releases a quarter second at a time."""
        self.base = f"{PREFIX}{os.getpid()}-{tag}"
        self.offloads = offloads
        self.iperf = iperf
        self.roles = ("r", "sw", "p1", "p2", "rogue", "up")
        self.procs: list[subprocess.Popen[str]] = []
        self.logdir = Path(f"/tmp/{self.base}logs")
        self.built: list[str] = []

    def ns(self, role: str) -> str:
        return f"{self.base}{role}"

    def log(self, name: str) -> Path:
        return self.logdir / name

    # -- building ---------------------------------------------------------------------------

    def build(self) -> None:
        clean_leftovers()
        shutil.rmtree(self.logdir, ignore_errors=True)
        self.logdir.mkdir(parents=True)
        try:
            self._build()
            self._start_servers()
        except BaseException:
            self.destroy()
            raise

    def _ip(self, role: str, *args: str) -> None:
        run("ip", "-n", self.ns(role), *args)

    def _sysctl(self, role: str, *settings: str) -> None:
        """Write /proc/sys from inside the namespace (no procps needed)."""
        with inside(self.ns(role)):
            for setting in settings:
                name, value = setting.split("=")
                Path("/proc/sys", *name.split(".")).write_text(value)

    def _build(self) -> None:
        for role in self.roles:
            run("ip", "netns", "add", self.ns(role))
            self.built.append(self.ns(role))
            self._ip(role, "link", "set", "lo", "up")
            if role != "sw":
                self._sysctl(
                    role, "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_dad=0"
                )
        sw, up = self.ns("sw"), self.ns("up")
        self._ip("sw", "link", "add", "br0", "type", "bridge")
        self._ip("sw", "link", "set", "br0", "up")
        self._ip("r", "link", "add", "lan0", "type", "veth", "peer", "name", "r", "netns", sw)
        self._ip("sw", "link", "set", "r", "master", "br0", "up")
        for host in (PHONE1, PHONE2, ROGUE):
            self._ip(
                host.role, "link", "add", "eth0", "address", host.mac, "type", "veth",
                "peer", "name", host.role, "netns", sw,
            )  # fmt: skip
            self._ip("sw", "link", "set", host.role, "master", "br0", "up")
            self._ip(host.role, "link", "set", "eth0", "up")
            if host.ip:
                self._ip(host.role, "addr", "add", f"{host.ip}/16", "dev", "eth0")
                self._ip(host.role, "route", "add", "default", "via", ROUTER_LAN)
            if host.ip6:
                self._ip(host.role, "addr", "add", f"{host.ip6}/64", "dev", "eth0", "nodad")
                self._ip(host.role, "-6", "route", "add", "default", "via", "fd66::1")
        self._ip("r", "link", "add", "wan0", "type", "veth", "peer", "name", "eth0", "netns", up)
        self._ip("r", "addr", "add", f"{ROUTER_LAN}/16", "dev", "lan0")
        self._ip("r", "addr", "add", "fd66::1/64", "dev", "lan0", "nodad")
        self._ip("r", "addr", "add", f"{ROUTER_WAN}/24", "dev", "wan0")
        self._ip("r", "addr", "add", "2001:db8:18::1/64", "dev", "wan0", "nodad")
        for dev in ("lan0", "wan0"):
            self._ip("r", "link", "set", dev, "up")
        self._sysctl("r", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
        self._ip("up", "addr", "add", f"{UPSTREAM}/24", "dev", "eth0")
        self._ip("up", "addr", "add", f"{GARDEN_HOST}/24", "dev", "eth0")
        self._ip("up", "addr", "add", f"{UPSTREAM6}/64", "dev", "eth0", "nodad")
        self._ip("up", "link", "set", "eth0", "up")
        self._ip("up", "route", "add", LAN_PREFIX, "via", ROUTER_WAN)
        self._ip("up", "-6", "route", "add", "fd66::/64", "via", "2001:db8:18::1")
        if not self.offloads:
            for role, dev in (("p1", "eth0"), ("p2", "eth0"), ("rogue", "eth0"), ("up", "eth0"),
                              ("r", "lan0"), ("r", "wan0")):  # fmt: skip
                self._ip(role, "link", "set", "dev", dev, "gso_max_segs", "1")

    def _start_servers(self) -> None:
        self.serve("up", "serve-http", "80", "UPSTREAM", str(self.log("up-http")))
        self.serve("up", "serve-tcp", str(TCP_PORT), str(self.log("up-tcp")))
        self.serve("up", "serve-dns", "53", str(self.log("up-dns")))
        self.serve("r", "serve-http", str(PORTAL_PORT), "PORTAL", str(self.log("portal")))
        self.serve("r", "serve-dns", "53", str(self.log("router-dns")))
        if not self.iperf:
            return
        for port in IPERF_PORTS:
            self.procs.append(
                subprocess.Popen(
                    ["ip", "netns", "exec", self.ns("up"), "timeout", "900", "iperf3", "-s",
                     "-p", str(port), "-B", UPSTREAM],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
                )
            )  # fmt: skip
        for port in IPERF_PORTS:
            for _ in range(50):
                if self.agent("up", "connect", UPSTREAM, str(port))["result"] == "connected":
                    break
                time.sleep(0.1)
            else:
                raise RuntimeError(f"iperf3 on port {port} did not start")

    def serve(self, role: str, *args: str) -> subprocess.Popen[str]:
        """Start an agent server in `role` and wait until it listens; kill it when done with
        it, or it listens until the lab goes."""
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns(role), sys.executable, AGENT, *args],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        self.procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the agent prints "ready" once bound
        if line.strip() != "ready":
            raise RuntimeError(f"server {args} in {role} did not start")
        return proc

    def destroy(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        self.procs.clear()
        for name in reversed(self.built):
            delete_namespace(name)
        self.built.clear()
        shutil.rmtree(self.logdir, ignore_errors=True)

    # -- using ------------------------------------------------------------------------------

    def exec(self, role: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return run("ip", "netns", "exec", self.ns(role), *args, timeout=timeout, check=False)

    def agent(self, role: str, *args: str, timeout: float = 3.0) -> dict[str, Any]:
        """Run one agent client in `role` and return what it printed."""
        proc = self.exec(
            role, sys.executable, AGENT, *args, "--timeout", str(timeout), timeout=timeout + 60
        )
        if proc.returncode != 0:
            raise RuntimeError(f"agent {args} in {role} failed: {proc.stderr.strip()}")
        result: dict[str, Any] = json.loads(proc.stdout)
        return result

    def start_agent(self, role: str, *args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns(role), sys.executable, AGENT, *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.procs.append(proc)
        return proc

    def link_bytes(self, role: str, dev: str = "eth0") -> tuple[int, int, int, int]:
        """(tx bytes, tx packets, rx bytes, rx packets) of an interface, as the kernel counts."""
        data = json.loads(self.exec(role, "ip", "-s", "-j", "link", "show", dev).stdout)[0]
        stats = data["stats64"]
        return (
            stats["tx"]["bytes"],
            stats["tx"]["packets"],
            stats["rx"]["bytes"],
            stats["rx"]["packets"],
        )

    def log_lines(self, name: str) -> list[str]:
        path = self.log(name)
        return path.read_text().splitlines() if path.exists() else []
