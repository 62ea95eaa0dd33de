"""The Lab: building it in order (state directory and the router's config, the network, the
lab's internet, the demo data, the router's programs, the phones), the handles tests use on a
running one (hotspotctl, pid, spawn), and its description as JSON (lab.json, `--json`)."""

from __future__ import annotations

import grp
import json
import os
import pwd
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.lab import operator, phones, seed
from devtools.lab.layout import (
    DHCP_RANGE,
    GARDEN_HOST,
    LAN_ADDR,
    LAN_IF,
    LAN_PREFIX,
    NAMESPACES,
    NET_DNS,
    NET_GARDEN,
    NET_WEB,
    PHONE_MAC,
    PHONES,
    PORTAL_HOST,
    PORTAL_PORT,
    PROBE_HOSTS,
    REPO,
    REQUIRED_TOOLS,
    ROUTER,
    STATE,
    TEST_HOST,
    UPSTREAM,
    WAN_IF,
    WAN_ROUTER,
)
from devtools.lab.shell import LabError, run, say, wait_tcp, wait_udp_dns
from devtools.lab.topology import build_network, down, existing_namespaces, stop_namespace


@dataclass
class Lab:
    state: Path = STATE
    vouchers: dict[str, list[str]] = field(default_factory=dict)
    portal_user: str = "root"
    operator_user: str = "root"
    admin_password: str | None = None
    fingerprint: str | None = None

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
            build_network()
            self._start_upstream()
            self.vouchers.update(seed.load(self.hotspotctl, self.state))
            self.admin_password = operator.add_admin(self.bin("hotspotctl"), self.config)
            self._share_database()
            self._start_router()
            phones.start(self.state, self.logs)
        except BaseException:
            say(f"build failed; logs in {self.logs} are kept until `scripts/demo --down`")
            for ns in existing_namespaces():
                stop_namespace(ns)
                run("ip", "netns", "del", ns, check=False)
            raise
        info = self.describe()
        # It holds the admin's password: root's only, though the directory is group hotspot's.
        path = self.state / "lab.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(json.dumps(info, indent=2) + "\n")
        say(f"up in {time.monotonic() - started:.1f} s")
        return info

    def _prepare_state(self) -> None:
        # Like scripts/install: the state directory is root:hotspot 2770, files made with umask
        # 0007, so hotspotd (root) and the portal (user hotspot) share the SQLite database.
        self.state.mkdir(parents=True)
        for sub in ("logs", "run", "phones", "bin"):
            (self.state / sub).mkdir()
        self.portal_user = self._portal_user()
        self.operator_user = self._operator_user()
        if self.portal_user != "root":
            gid = grp.getgrnam("hotspot").gr_gid
            for path in (self.state, self.state / "run"):
                os.chown(path, 0, gid)
                path.chmod(0o2770)
        has_group = self.operator_user != "root"
        pair = operator.make_certificate(self.state, operator.USER if has_group else None)
        operator.check_key(pair, self.operator_user, self.portal_user)
        phones.write_hook(self.state)
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

[operator]
port = {operator.PORT}
tls_cert = "{pair.cert}"
tls_key = "{pair.key}"

[database]
url = "sqlite:///{self.state / "hotspot.db"}"

[daemon]
poll_interval = "2s"
control_socket = "{self.socket}"
state_dir = "{self.state}"
operator_user = "{operator.USER}"
"""
        )

    def _share_database(self) -> None:
        """SQLite makes its files 0644 whatever the umask allows, and its WAL and shm copy the
        database's mode: made group-writable, as scripts/install does, for the operator UI
        (group hotspot), which writes its sign-ins and the audit log."""
        for path in self.state.glob("hotspot.db*"):
            path.chmod(0o660)

    def _portal_user(self) -> str:
        """User `hotspot` as in production (made here if missing, as scripts/install does),
        unless it cannot run this clone's venv (e.g. a clone under /root): then root."""
        if shutil.which("useradd") is None:
            return "root"
        operator.make_accounts()  # hotspot and hotspot-operator, as scripts/install makes them
        return self._runs_as("hotspot", "portal.app", "the portal")

    def _operator_user(self) -> str:
        """User `hotspot-operator` (group hotspot besides its own), as in production; root if
        it cannot run this clone's venv."""
        if self.portal_user == "root":
            return "root"
        return self._runs_as(operator.USER, "portal.operator.app", "the operator UI")

    def _runs_as(self, user: str, module: str, what: str) -> str:
        try:
            pwd.getpwnam(user)
        except KeyError:
            say(f"no user {user}; {what} runs as root in the lab")
            return "root"
        probe = run(
            "setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups",
            "env", f"PYTHONPATH={REPO}", self.bin("python"), "-c", f"import {module}", check=False,
        )  # fmt: skip
        if probe.returncode != 0:
            say(f"user {user} cannot read this clone; {what} runs as root in the lab")
            return "root"
        return user

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
            # This clone's code, even where .venv is another clone's (a worktree sharing it).
            "PYTHONPATH": str(REPO),
            "HOME": "/nonexistent",
        }
        portal = (self.bin("hotspot-portal"), "--config", str(self.config))
        self.spawn("portal", ROUTER, *user, *portal, umask=0o007, env=env)
        wait_tcp(ROUTER, LAN_ADDR, PORTAL_PORT, "the portal", seconds=30)
        as_operator = () if self.operator_user == "root" else (
            "setpriv", f"--reuid={self.operator_user}", f"--regid={self.operator_user}",
            "--init-groups",
        )  # fmt: skip
        ui = (self.bin("hotspot-operator"), "--config", str(self.config))
        self.spawn("operator", ROUTER, *as_operator, *ui, umask=0o007, env=env)
        wait_tcp(ROUTER, LAN_ADDR, operator.PORT, "the operator UI", seconds=30)
        # The product's own word for what the operator compares in the browser.
        said = self.hotspotctl("operator", "certificate")
        found = re.search(r"^SHA-256 ([0-9A-F:]{95})$", said, re.M)
        if found is None:
            raise LabError(f"hotspotctl operator certificate said no fingerprint: {said!r}")
        self.fingerprint = found.group(1)

    def pid(self, name: str) -> int:
        """The pid of a process the lab started (hotspotd, portal, router-dnsmasq, ...)."""
        return int((self.state / "run" / f"{name}.pid").read_text().split()[0])

    @property
    def captive_api(self) -> str:
        return f"http://{PORTAL_HOST}:{PORTAL_PORT}/api/captive"

    # -- describing ------------------------------------------------------------------------------

    def phone_lease(self, phone: str) -> dict[str, Any]:
        return phones.lease(self.state, phone)

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
                "url": operator.url(),
                "address": operator.url(LAN_ADDR),
                "namespace": ROUTER,  # where it runs; any phone reaches it as portal.lan
                "user": self.operator_user,
                "certificate": str(self.state / "operator.crt"),
                "fingerprint": self.fingerprint,
                "admin": {"user": operator.ADMIN, "password": self.admin_password},
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
