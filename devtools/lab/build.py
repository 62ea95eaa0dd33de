"""The demo lab: a whole village hotspot in network namespaces, built by `scripts/demo`.

    hs-phone1 ┐                                   ┌ hs-net: 198.18.0.2  DNS (dnsmasq)
    hs-phone2 ├─ br-lan [hs-router] wan0 ─ eth0 ──┤         198.18.0.10 web: berita.example
    hs-phone3 ┘  10.66.0.1/16    198.18.0.1       └         198.18.0.20 web: sukamaju.desa.example

The router runs the real programs as in production: hotspotd (nftables table, tc classes,
control socket), dnsmasq (DHCP with option 114, DNS forwarded only to hs-net's resolver, the
walled garden by name with `nftset=`) and hotspot-portal (waitress, as user `hotspot`). The
phones get their addresses by DHCP (dhclient with our own hook, which never touches the host's
resolv.conf or hostname). hs-net is the lab's "internet": a resolver that knows a few names
and a web server; nothing in the lab reaches any other address. Its 198.18.0.0/24 (the
benchmarking range) is outside the private ranges the firewall never forwards phones to, so the
lab needs no network.local_destinations.

Everything the lab writes lives in `var/lab/` of the clone, plus `/etc/netns/hs-phoneN/`
(the phones' resolv.conf). `down()` stops every process inside our namespaces (found by
namespace, so it also works after a crash), deletes the namespaces and those files.

Stdlib only at import time, so `python3 -m devtools.lab down` works without the venv.
Used by scripts/demo and tests/e2e.
"""

from __future__ import annotations

import argparse
import contextlib
import grp
import http.server
import json
import os
import pwd
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
STATE = REPO / "var" / "lab"

ROUTER = "hs-router"
UPSTREAM = "hs-net"
PHONES = ("hs-phone1", "hs-phone2", "hs-phone3")
NAMESPACES = (ROUTER, UPSTREAM, *PHONES)

LAN_IF = "br-lan"
WAN_IF = "wan0"
LAN_ADDR = "10.66.0.1"
LAN_PREFIX = "10.66.0.0/16"
DHCP_RANGE = ("10.66.0.10", "10.66.0.250")
WAN_ROUTER = "198.18.0.1"
NET_DNS = "198.18.0.2"
NET_WEB = "198.18.0.10"
NET_GARDEN = "198.18.0.20"
PORTAL_PORT = 8080
PORTAL_HOST = "portal.lan"
TEST_HOST = "berita.example"
GARDEN_HOST = "sukamaju.desa.example"
# The OS captive probes' hosts: hs-net answers them as the real servers do, so a phone's
# login sheet closes by itself once it is online.
PROBE_HOSTS = (
    "connectivitycheck.gstatic.com",
    "clients3.google.com",
    "www.google.com",
    "captive.apple.com",
    "www.msftconnecttest.com",
    "detectportal.firefox.com",
)
PHONE_MAC = "02:66:00:00:00:{:02x}"

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
REQUIRED_TOOLS = ("ip", "nft", "tc", "dnsmasq", "dhclient", "setpriv")

# The phones' DHCP hook. dhclient runs it with a clean environment and these variables; it sets
# the address and the default route and writes the phone's own resolv.conf
# (/etc/netns/<phone>/resolv.conf, which `ip netns exec` mounts over /etc/resolv.conf) and a
# lease summary. It never touches the host's /etc/resolv.conf or the hostname.
DHCP_HOOK = r"""#!/bin/sh
set -u
ns=$(ip netns identify $$)
case "$ns" in hs-phone[0-9]) ;; *) echo "hook: not in a lab phone ($ns)" >&2; exit 1 ;; esac
state="__STATE__/phones"
case "$reason" in
PREINIT)
    ip link set dev "$interface" up ;;
BOUND|RENEW|REBIND|REBOOT)
    if [ -n "${old_ip_address:-}" ] && [ "$old_ip_address" != "$new_ip_address" ]; then
        ip -4 addr flush dev "$interface"
    fi
    ip addr replace "$new_ip_address/$new_subnet_mask" dev "$interface"
    ip route replace default via "${new_routers%% *}" dev "$interface"
    : > "/etc/netns/$ns/resolv.conf"
    for server in ${new_domain_name_servers:-}; do
        echo "nameserver $server" >> "/etc/netns/$ns/resolv.conf"
    done
    printf '{"address": "%s", "netmask": "%s", "router": "%s", "dns": "%s", %s}\n' \
        "$new_ip_address" "$new_subnet_mask" "${new_routers%% *}" \
        "${new_domain_name_servers:-}" "\"captive_url\": \"${new_default_url:-}\"" \
        > "$state/$ns.json" ;;
EXPIRE|FAIL|RELEASE|STOP)
    ip -4 addr flush dev "$interface"
    rm -f "$state/$ns.json" ;;
esac
exit 0
"""

DHCLIENT_CONF = """\
send host-name "{name}";
request subnet-mask, broadcast-address, routers, domain-name-servers, default-url;
timeout 20;
retry 2;
"""


class LabError(Exception):
    """The lab could not be built; the message says which step."""


def run(*args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def in_ns(ns: str, *args: str, check: bool = True, timeout: float = 30) -> str:
    return run("ip", "netns", "exec", ns, *args, check=check, timeout=timeout).stdout


def say(text: str) -> None:
    print(f"lab: {text}", file=sys.stderr, flush=True)


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


def _stop_namespace(ns: str) -> None:
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
        _stop_namespace(ns)
    _stop_recorded(state)
    for ns in removed:
        run("ip", "netns", "del", ns, check=False)
    for ns in NAMESPACES:
        shutil.rmtree(Path("/etc/netns") / ns, ignore_errors=True)
    shutil.rmtree(state, ignore_errors=True)
    shutil.rmtree(REPO / "var" / "demo", ignore_errors=True)  # the CLI-only demo before the lab
    return removed


# -- building ------------------------------------------------------------------------------------


@dataclass
class Lab:
    state: Path = STATE
    vouchers: dict[str, list[str]] = field(default_factory=dict)
    portal_user: str = "root"

    @property
    def config(self) -> Path:
        return self.state / "hotspot.toml"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def socket(self) -> Path:
        return self.state / "run" / "control.sock"

    def bin(self, name: str) -> str:
        venv = REPO / ".venv" / "bin" / name
        if venv.exists():
            return str(venv)
        found = shutil.which(name)
        if found is None:
            raise LabError(f"{name} not found: run scripts/setup first")
        return found

    def up(self) -> dict[str, Any]:
        if os.geteuid() != 0:
            raise LabError("the lab needs root (network namespaces)")
        missing = [t for t in REQUIRED_TOOLS if shutil.which(t) is None]
        if missing:
            raise LabError(f"missing commands: {', '.join(missing)} (run scripts/setup)")
        if down(self.state):
            say("removed an earlier lab first")
        started = time.monotonic()
        try:
            self._prepare_state()
            self._build_network()
            self._start_upstream()
            self._load_demo_data()
            self._start_router()
            self._start_phones()
        except BaseException:
            say(f"build failed; logs in {self.logs} are kept until `scripts/demo --down`")
            for ns in existing_namespaces():
                _stop_namespace(ns)
                run("ip", "netns", "del", ns, check=False)
            raise
        info = self.describe()
        (self.state / "lab.json").write_text(json.dumps(info, indent=2) + "\n")
        say(f"up in {time.monotonic() - started:.1f} s")
        return info

    def _prepare_state(self) -> None:
        # Like scripts/install: the state directory is root:hotspot 2770, files made with umask
        # 0007, so hotspotd (root) and the portal (user hotspot) share the SQLite database.
        self.state.mkdir(parents=True)
        for sub in ("logs", "run", "phones", "bin"):
            (self.state / sub).mkdir()
        self.portal_user = self._portal_user()
        if self.portal_user != "root":
            gid = grp.getgrnam("hotspot").gr_gid
            for path in (self.state, self.state / "run"):
                os.chown(path, 0, gid)
                path.chmod(0o2770)
        hook = self.state / "bin" / "phone-dhcp-hook"
        hook.write_text(DHCP_HOOK.replace("__STATE__", str(self.state)))
        hook.chmod(0o755)
        self.config.write_text(
            f"""# The demo lab's router (devtools/lab). Same keys as /etc/hotspot/hotspot.toml.
[village]
name = "Desa Sukamaju"
operator = "BUMDes Maju Bersama"
message = "Selamat datang di internet RT Desa Sukamaju (lab demo)."
timezone = "Asia/Jakarta"

[network]
lan_interface = "{LAN_IF}"
wan_interface = "{WAN_IF}"
lan_prefix = "{LAN_PREFIX}"
uplink_down = "20M"
uplink_up = "5M"

[portal]
address = "{LAN_ADDR}"
port = {PORTAL_PORT}
hostname = "{PORTAL_HOST}"
runtime_dir = "{self.state / "portal-run"}"

[database]
url = "sqlite:///{self.state / "hotspot.db"}"

[daemon]
poll_interval = "2s"
control_socket = "{self.socket}"
state_dir = "{self.state}"
"""
        )

    def _portal_user(self) -> str:
        """User `hotspot` as in production (made here if missing, as scripts/install does),
        unless it cannot run this clone's venv (e.g. a clone under /root): then root."""
        if shutil.which("useradd") is None:
            return "root"
        try:
            grp.getgrnam("hotspot")
        except KeyError:
            run("groupadd", "--system", "hotspot")
        try:
            pwd.getpwnam("hotspot")
        except KeyError:
            run(
                "useradd", "--system", "--gid", "hotspot", "--home-dir", "/var/lib/hotspot",
                "--no-create-home", "--shell", "/usr/sbin/nologin",
                "--comment", "village hotspot portal", "hotspot",
            )  # fmt: skip
        probe = run(
            "setpriv", "--reuid=hotspot", "--regid=hotspot", "--init-groups",
            self.bin("python"), "-c", "import portal", check=False,
        )  # fmt: skip
        if probe.returncode != 0:
            say("user hotspot cannot read this clone; the portal runs as root in the lab")
            return "root"
        return "hotspot"

    def _build_network(self) -> None:
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

    def spawn(
        self,
        name: str,
        ns: str,
        *args: str,
        umask: int = -1,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start a long-running program in a namespace, detached, its output in logs/NAME.log."""
        with (self.logs / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", ns, *args],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, umask=umask, env=env, cwd=cwd,
            )  # fmt: skip
        (self.state / "run" / f"{name}.pid").write_text(f"{proc.pid}\n")
        return proc

    def _dnsmasq(self, name: str, ns: str, *args: str) -> None:
        pidfile = self.state / "run" / f"{name}.pid"
        self.spawn(
            name, ns, "dnsmasq", "-k", "--conf-file=/dev/null", f"--pid-file={pidfile}",
            "--no-resolv", "--no-hosts", "--bind-interfaces", "--except-interface=lo",
            "--log-queries", "--log-facility=-", *args,
        )  # fmt: skip

    def _start_upstream(self) -> None:
        names = [f"--address=/{TEST_HOST}/{NET_WEB}", f"--address=/{GARDEN_HOST}/{NET_GARDEN}"]
        names += [f"--address=/{host}/{NET_WEB}" for host in PROBE_HOSTS]
        self._dnsmasq("net-dns", UPSTREAM, "--interface=eth0", "--user=root", *names)
        # devtools is not installed: `-m` finds it from the clone's root, whatever our cwd.
        self.spawn(
            "net-web", UPSTREAM, self.bin("python"), "-m", "devtools.lab", "serve-upstream",
            "--log", str(self.logs / "net-web-requests.log"), cwd=REPO,
        )  # fmt: skip
        wait_tcp(UPSTREAM, NET_WEB, 80, "the upstream web server")
        wait_udp_dns(UPSTREAM, NET_DNS, "the upstream resolver")

    def hotspotctl(self, *args: str) -> str:
        return run(self.bin("hotspotctl"), "--config", str(self.config), *args).stdout

    def _load_demo_data(self) -> None:
        old = os.umask(0o007)
        try:
            self.hotspotctl("db", "upgrade")
            for plan in DEMO_PLANS:
                self.hotspotctl("plan", "add", *plan)
            for plan, count in DEMO_VOUCHERS.items():
                extra = ("--digits",) if plan == "Mingguan" else ()
                out = self.hotspotctl(
                    "voucher", "make", "--plan", plan, "--count", str(count),
                    "--batch", f"Lab {plan}", "--by", "lab", "--json", *extra,
                )  # fmt: skip
                self.vouchers[plan] = [str(c) for c in json.loads(out)]
            self.hotspotctl("lesson", "import", *(str(p) for p in sorted(LESSONS.glob("*.txt"))))
            for listing in DEMO_LISTINGS:
                self.hotspotctl("market", "add", *listing)
        finally:
            os.umask(old)
        (self.state / "vouchers.json").write_text(json.dumps(self.vouchers, indent=2) + "\n")

    def _start_router(self) -> None:
        self.spawn("hotspotd", ROUTER, self.bin("hotspotd"), "--config", str(self.config),
                   umask=0o007)  # fmt: skip
        deadline = time.monotonic() + 20
        while not self.socket.exists():
            if time.monotonic() > deadline:
                raise LabError(f"hotspotd did not start: see {self.logs / 'hotspotd.log'}")
            time.sleep(0.1)
        # dnsmasq fills hotspotd's garden_dns set: the table must exist first.
        self._dnsmasq(
            "router-dnsmasq", ROUTER, f"--interface={LAN_IF}", f"--server={NET_DNS}",
            "--domain-needed", "--bogus-priv",
            f"--address=/{PORTAL_HOST}/{LAN_ADDR}", f"--local=/{PORTAL_HOST}/",
            f"--nftset=/{GARDEN_HOST}/4#inet#hotspot#garden_dns", "--max-cache-ttl=3600",
            f"--dhcp-range={DHCP_RANGE[0]},{DHCP_RANGE[1]},255.255.0.0,12h",
            f"--dhcp-option-force=114,{self.captive_api}",
            "--dhcp-authoritative", "--no-ping", "--log-dhcp",
            f"--dhcp-leasefile={self.state / 'dnsmasq.leases'}",
        )  # fmt: skip
        wait_udp_dns(ROUTER, LAN_ADDR, "the router's dnsmasq")
        user = () if self.portal_user == "root" else (
            "setpriv", "--reuid=hotspot", "--regid=hotspot", "--init-groups",
        )  # fmt: skip
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "HOTSPOT_CONFIG": str(self.config),
            "PYTHONUNBUFFERED": "1",
            "HOME": "/nonexistent",
        }
        portal = (self.bin("hotspot-portal"), "--config", str(self.config))
        self.spawn("portal", ROUTER, *user, *portal, umask=0o007, env=env)
        wait_tcp(ROUTER, LAN_ADDR, PORTAL_PORT, "the portal", seconds=30)

    def pid(self, name: str) -> int:
        """The pid of a process the lab started (hotspotd, portal, router-dnsmasq, ...)."""
        return int((self.state / "run" / f"{name}.pid").read_text().split()[0])

    @property
    def captive_api(self) -> str:
        return f"http://{PORTAL_HOST}:{PORTAL_PORT}/api/captive"

    def _start_phones(self) -> None:
        hook = self.state / "bin" / "phone-dhcp-hook"
        procs = []
        for phone in PHONES:
            conf = self.state / "phones" / f"{phone}.dhclient.conf"
            conf.write_text(DHCLIENT_CONF.format(name=phone))
            leases = self.state / "phones" / f"{phone}.leases"
            pidfile = self.state / "run" / f"{phone}-dhclient.pid"
            dhclient = ["dhclient", "-1", "-cf", str(conf), "-sf", str(hook), "-lf", str(leases)]
            with (self.logs / f"{phone}-dhclient.log").open("ab") as log:
                procs.append(
                    subprocess.Popen(
                        ["ip", "netns", "exec", phone, *dhclient, "-pf", str(pidfile), "eth0"],
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                        stderr=log,
                        start_new_session=True,
                    )
                )
        for phone, proc in zip(PHONES, procs, strict=True):
            try:
                code = proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = -1
            if code != 0 or not (self.state / "phones" / f"{phone}.json").exists():
                raise LabError(f"{phone} got no DHCP lease: see {self.logs}")

    # -- describing ------------------------------------------------------------------------------

    def phone_lease(self, phone: str) -> dict[str, Any]:
        path = self.state / "phones" / f"{phone}.json"
        return dict(json.loads(path.read_text())) if path.exists() else {}

    def describe(self) -> dict[str, Any]:
        portal = f"http://{PORTAL_HOST}:{PORTAL_PORT}/"
        return {
            "state_dir": str(self.state),
            "config": str(self.config),
            "control_socket": str(self.socket),
            "logs": str(self.logs),
            "namespaces": {"router": ROUTER, "phones": list(PHONES), "upstream": UPSTREAM},
            "router": {
                "namespace": ROUTER,
                "interfaces": {
                    LAN_IF: f"{LAN_ADDR}/16",
                    WAN_IF: f"{WAN_ROUTER}/24",
                    **{f"phone{i}": "bridge port" for i in range(1, len(PHONES) + 1)},
                },
                "dhcp_range": list(DHCP_RANGE),
            },
            "phones": [
                {
                    "namespace": phone,
                    "interface": "eth0",
                    "mac": PHONE_MAC.format(i),
                    **self.phone_lease(phone),
                }
                for i, phone in enumerate(PHONES, start=1)
            ],
            "upstream": {
                "namespace": UPSTREAM,
                "interface": "eth0",
                "addresses": [f"{a}/24" for a in (NET_DNS, NET_WEB, NET_GARDEN)],
                "dns": NET_DNS,
                "test_url": f"http://{TEST_HOST}/",
                "garden_url": f"http://{GARDEN_HOST}/",
            },
            "portal": {
                "url": portal,
                "market": f"{portal}pasar",
                "lessons": f"{portal}belajar",
                "address": f"http://{LAN_ADDR}:{PORTAL_PORT}/",
                "captive_api": self.captive_api,
                "user": self.portal_user,
            },
            "operator": {
                "url": None,
                "note": "the operator web UI comes with its own issue; use hotspotctl for now",
                "admin": None,
            },
            "vouchers": self.vouchers,
        }


def load_running(state: Path = STATE) -> dict[str, Any] | None:
    """The description of the lab that is up, or None."""
    path = state / "lab.json"
    if not path.exists() or set(existing_namespaces()) != set(NAMESPACES):
        return None
    info: dict[str, Any] = json.loads(path.read_text())
    return info


# -- waiting, from inside a namespace ------------------------------------------------------------

_PROBE_TCP = """
import socket, sys, time
end = time.monotonic() + float(sys.argv[3])
while time.monotonic() < end:
    try:
        socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=0.5).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
"""

_PROBE_DNS = """
import socket, sys, time
query = bytes.fromhex("abcd01000001000000000000") + b"\\x05probe\\x03lab\\x00\\x00\\x01\\x00\\x01"
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.3)
    try:
        s.sendto(query, (sys.argv[1], 53))
        s.recv(512)
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
    finally:
        s.close()
sys.exit(1)
"""


def wait_tcp(ns: str, host: str, port: int, what: str, seconds: float = 15) -> None:
    proc = run("ip", "netns", "exec", ns, sys.executable, "-c", _PROBE_TCP, host, str(port),
               str(seconds), check=False, timeout=seconds + 10)  # fmt: skip
    if proc.returncode != 0:
        raise LabError(f"{what} does not listen on {host}:{port} in {ns}")


def wait_udp_dns(ns: str, host: str, what: str, seconds: float = 10) -> None:
    proc = run("ip", "netns", "exec", ns, sys.executable, "-c", _PROBE_DNS, host, str(seconds),
               check=False, timeout=seconds + 10)  # fmt: skip
    if proc.returncode != 0:
        raise LabError(f"{what} does not answer DNS on {host} in {ns}")


# -- the upstream web server ---------------------------------------------------------------------

PROBE_ANSWERS: dict[str, tuple[int, str, str]] = {
    "/generate_204": (204, "", "text/plain"),
    "/gen_204": (204, "", "text/plain"),
    "/hotspot-detect.html": (
        200,
        "<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>",
        "text/html",
    ),
    "/connecttest.txt": (200, "Microsoft Connect Test", "text/plain"),
    "/canonical.html": (200, "<meta http-equiv='refresh' content='0;url=/'/>", "text/html"),
    "/success.txt": (200, "success\n", "text/plain"),
}


def upstream_page(host: str, path: str) -> str:
    if host == GARDEN_HOST:
        title, text = "Situs Desa Sukamaju", "Pasar BUMDes - terbuka tanpa voucher (walled garden)."
    else:
        title, text = "Berita Desa", "A page on the lab's internet."
    return (
        "<!doctype html><html lang='id'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{title}</title></head><body><h1>{title}</h1><p>{text}</p>"
        f"<p id='upstream'>UPSTREAM {host}{path}</p></body></html>"
    )


def serve_upstream(log_path: str, port: int = 80) -> None:
    """hs-net's web server: probe answers as the real servers give them, a page per host."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            host = (self.headers.get("Host") or "").split(":")[0].lower()
            path = self.path.split("?")[0]
            with open(log_path, "a", encoding="utf-8") as f:
                f.write(f"{self.client_address[0]} {host} {self.path}\n")
            if host != GARDEN_HOST and path in PROBE_ANSWERS:
                status, body, mimetype = PROBE_ANSWERS[path]
            else:
                status, body, mimetype = 200, upstream_page(host, self.path), "text/html"
            data = body.encode()
            self.send_response(status)
            if status != 204:
                self.send_header("Content-Type", f"{mimetype}; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if status != 204:
                self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    with Server(("0.0.0.0", port), Handler) as server:  # noqa: S104 - inside hs-net only
        server.serve_forever()


# -- command line --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.lab", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="build the lab (removing an earlier one first), print it as JSON")
    sub.add_parser("down", help="remove the lab")
    sub.add_parser("json", help="print the running lab as JSON (build it if none runs)")
    web = sub.add_parser("serve-upstream", help="(inside hs-net) the lab's web server")
    web.add_argument("--log", required=True)
    web.add_argument("--port", type=int, default=80)
    args = parser.parse_args(argv)
    try:
        if args.command == "down":
            removed = down()
            say(f"removed {', '.join(removed)}" if removed else "nothing to remove")
            return 0
        if args.command == "serve-upstream":
            socket.setdefaulttimeout(30)
            serve_upstream(args.log, args.port)
            return 0
        info = load_running() if args.command == "json" else None
        if info is None:
            info = Lab().up()
        print(json.dumps(info, indent=2))
        return 0
    except (LabError, OSError, subprocess.TimeoutExpired) as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 1
