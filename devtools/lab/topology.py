"""The lab's network: the namespaces, the router's bridge with a veth to each phone, the uplink
veth to hs-net with its addresses and routes; and taking it all down again, processes included,
whatever state a crash or a half build left it in."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from pathlib import Path

from devtools.lab.layout import (
    LAN_ADDR,
    LAN_IF,
    LAN_PREFIX,
    NAMESPACES,
    NET_DNS,
    NET_GARDEN,
    NET_WEB,
    PHONE_MAC,
    PHONES,
    REPO,
    ROUTER,
    STATE,
    UPSTREAM,
    WAN_IF,
    WAN_ROUTER,
)
from devtools.lab.shell import in_ns, run

# -- taking it down ------------------------------------------------------------------------------


def existing_namespaces() -> list[str]:
    names = []
    for line in run("ip", "netns", "list", check=False).stdout.splitlines():
        parts = line.split()
        if parts and parts[0] in NAMESPACES:
            names.append(parts[0])
    return names


def _pids_in(ns: str) -> list[int]:
    out = run("ip", "netns", "pids", ns, check=False).stdout.split()
    return [int(p) for p in out if p.isdigit()]


def stop_namespace(ns: str) -> None:
    """SIGTERM everything in the namespace, wait up to 5 s, then SIGKILL what is left."""
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        pids = _pids_in(ns)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _pids_in(ns):
            time.sleep(0.1)


def _stop_recorded(state: Path) -> None:
    """Processes whose namespace is already gone (deleted by hand, say) are found by their pid
    files; one is signalled only if its command line still names our state directory."""
    run_dir = state / "run"
    if not run_dir.is_dir():
        return
    for pidfile in run_dir.glob("*.pid"):
        try:
            pid = int(pidfile.read_text().split()[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if str(state).encode() in cmdline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def down(state: Path = STATE) -> list[str]:
    """Remove the lab, whatever state a crash or a half build left it in."""
    removed = existing_namespaces()
    for ns in removed:
        stop_namespace(ns)
    _stop_recorded(state)
    for ns in removed:
        run("ip", "netns", "del", ns, check=False)
    for ns in NAMESPACES:
        shutil.rmtree(Path("/etc/netns") / ns, ignore_errors=True)
    shutil.rmtree(state, ignore_errors=True)
    shutil.rmtree(REPO / "var" / "demo", ignore_errors=True)  # the CLI-only demo before the lab
    return removed


# -- building ------------------------------------------------------------------------------------


def build_network() -> None:
    """The namespaces and links, all up; forwarding in the router left off."""
    for ns in NAMESPACES:
        run("ip", "netns", "add", ns)
        run("ip", "-n", ns, "link", "set", "lo", "up")
    r = ("ip", "-n", ROUTER)
    run(*r, "link", "add", LAN_IF, "type", "bridge", "stp_state", "0")
    run(*r, "addr", "add", f"{LAN_ADDR}/16", "dev", LAN_IF)
    run(*r, "link", "set", LAN_IF, "up")
    # With br_netfilter loaded on the host (Docker loads it), bridged frames also pass the
    # IP hooks, and the portal redirect's replies are lost: a router has it off.
    in_ns(ROUTER, "sh", "-c", "for f in /proc/sys/net/bridge/bridge-nf-call-*; do "
          "[ -e \"$f\" ] && echo 0 > \"$f\"; done; true")  # fmt: skip
    for i, phone in enumerate(PHONES, start=1):
        Path("/etc/netns", phone).mkdir(parents=True, exist_ok=True)
        Path("/etc/netns", phone, "resolv.conf").write_text("")
        port = f"phone{i}"
        run(
            "ip", "-n", phone, "link", "add", "eth0", "address", PHONE_MAC.format(i),
            "type", "veth", "peer", "name", port, "netns", ROUTER,
        )  # fmt: skip
        run(*r, "link", "set", port, "master", LAN_IF, "up")
        run("ip", "-n", phone, "link", "set", "eth0", "up")
    run(*r, "link", "add", WAN_IF, "type", "veth", "peer", "name", "eth0", "netns", UPSTREAM)
    run(*r, "addr", "add", f"{WAN_ROUTER}/24", "dev", WAN_IF)
    run(*r, "link", "set", WAN_IF, "up")
    u = ("ip", "-n", UPSTREAM)
    for addr in (NET_DNS, NET_WEB, NET_GARDEN):
        run(*u, "addr", "add", f"{addr}/24", "dev", "eth0")
    run(*u, "link", "set", "eth0", "up")
    # hotspotd masquerades behind the uplink (network.masquerade), as a real ISP modem
    # needs; the route back is there for `masquerade = false` and for tests without it.
    run(*u, "route", "add", LAN_PREFIX, "via", WAN_ROUTER)
    run(*r, "route", "add", "default", "via", NET_DNS)
    # Forwarding stays off: hotspotd turns it on once its table is built.
    in_ns(ROUTER, "sh", "-c", "echo 0 > /proc/sys/net/ipv4/ip_forward")
