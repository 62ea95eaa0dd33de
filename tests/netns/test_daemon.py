"""The real hotspotd process in the lab's router, with real traffic from the phones.

Login, logout, expiry by time, data and idle timeout, and recovery after `kill -9` (with the
kernel table kept, and with it gone as after a reboot).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hotspotd import schema
from hotspotd.control import ControlClient, ControlError
from hotspotd.control.client import OperatorClient
from hotspotd.core import db as dbmod
from hotspotd.core import plans, vouchers
from hotspotd.core.plans import PlanTerms
from tests.netns.lab import PHONE1, PHONE2, PORTAL_PORT, ROUTER_LAN, TCP_PORT, UPSTREAM, Lab

pytestmark = pytest.mark.netns

HOTSPOTD = [sys.executable, "-c", "from hotspotd.daemon.main import run; run()"]
POLL_S = 1


class Daemon:
    """One hotspotd process in the router namespace, on its own database and socket."""

    def __init__(self, lab: Lab, tmp: Path) -> None:
        self.lab = lab
        self.tmp = tmp
        self.config = tmp / "hotspot.toml"
        self.socket = tmp / "run" / "control.sock"
        self.db_url = f"sqlite:///{tmp / 'hotspot.db'}"
        self.log = tmp / "hotspotd.log"
        self.config.write_text(
            f"""
[network]
lan_interface = "lan0"
wan_interface = "wan0"
lan_prefix = "10.66.0.0/16"
uplink_down = "100M"
uplink_up = "100M"

[portal]
address = "{ROUTER_LAN}"
port = {PORTAL_PORT}
runtime_dir = "{tmp / "portal-run"}"

[database]
url = "{self.db_url}"

[free]
enabled = true
time = "1h"
data = "none"

[daemon]
poll_interval = "{POLL_S}s"
control_socket = "{self.socket}"
state_dir = "{tmp}"
"""
        )
        engine = dbmod.make_engine(self.db_url)
        schema.upgrade(engine)
        self.sessionmaker = dbmod.make_sessionmaker(engine)
        self.proc: subprocess.Popen[bytes] | None = None
        self.client = ControlClient(self.socket, timeout=10)  # as the portal asks
        self.operator = OperatorClient(self.socket, "cli:test", timeout=10)  # as hotspotctl

    def voucher(self, plan: str, **terms: int) -> str:
        now = datetime.now(UTC)
        with self.sessionmaker.begin() as db:
            try:
                plans.find(db, plan)
            except Exception:
                plans.add(db, plan, PlanTerms(price_rp=1000, **terms), now)
            _, (v,) = vouchers.make_batch(db, plan_name=plan, count=1, created_by="t", now=now)
            return v.code

    def spawn(self) -> float:
        """Start the process; returns the monotonic time just before exec."""
        started = time.monotonic()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.lab.ns("r"), *HOTSPOTD, "--config", str(self.config)],
                stdout=log,
                stderr=log,
            )
        return started

    def start(self) -> float:
        """Start and wait until it answers; returns seconds from exec to first answer."""
        started = self.spawn()
        assert self.proc is not None
        for _ in range(200):
            if self.proc.poll() is not None:
                raise RuntimeError(f"hotspotd exited: {self.log.read_text()[-2000:]}")
            try:
                self.operator.call("online")
                return time.monotonic() - started
            except ControlError:
                time.sleep(0.05)
        raise RuntimeError("hotspotd did not answer within 10 s")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=20)

    def flush(self) -> None:
        subprocess.run(
            ["ip", "netns", "exec", self.lab.ns("r"), *HOTSPOTD, "--config", str(self.config),
             "--flush"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip


def fetch(lab: Lab, phone: str) -> str:
    """What a phone gets for an upstream page: UPSTREAM, PORTAL (redirected) or an error."""
    result = lab.agent(phone, "http", f"http://{UPSTREAM}/", timeout=2)
    return str(result["body"]).strip() if result["ok"] else f"error:{result['error']}"


def connects(lab: Lab, phone: str) -> bool:
    return bool(
        lab.agent(phone, "connect", UPSTREAM, str(TCP_PORT), timeout=0.3)["result"] == "connected"
    )


POLLER = """
import socket, sys, time
host, port, until = sys.argv[1], int(sys.argv[2]), time.monotonic() + float(sys.argv[3])
while time.monotonic() < until:
    s = socket.socket()
    s.settimeout(0.2)
    try:
        s.connect((host, port))
        print(time.monotonic(), flush=True)
        break
    except OSError:
        time.sleep(0.02)
    finally:
        s.close()
"""


def first_connect(lab: Lab, phone: str, within: float) -> subprocess.Popen[str]:
    """A poller in the phone that prints the (system-wide) monotonic time of its first connect."""
    proc = subprocess.Popen(
        ["ip", "netns", "exec", lab.ns(phone), sys.executable, "-c", POLLER, UPSTREAM,
         str(TCP_PORT), str(within)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    lab.procs.append(proc)
    return proc


def wait_for(predicate, seconds: float) -> float:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.2)
    raise AssertionError(f"not within {seconds} s")


def test_login_browse_logout(daemon: Daemon, lab: Lab) -> None:
    code = daemon.voucher("Harian", time_s=3600, down_bps=20_000_000, up_bps=20_000_000)
    daemon.start()
    assert fetch(lab, "p1") == "PORTAL"  # not logged in: the portal answers
    status = daemon.client.call("login", ip=PHONE1.ip, code=code.lower())
    assert status["plan"] == "Harian" and status["mac"] == PHONE1.mac
    assert fetch(lab, "p1") == "UPSTREAM"
    assert fetch(lab, "p2") == "PORTAL"  # the other phone is still outside
    online = daemon.operator.call("online")
    assert [o["ip"] for o in online] == [PHONE1.ip]
    daemon.client.call("logout", ip=PHONE1.ip)
    assert fetch(lab, "p1") == "PORTAL"


def test_free_allowance_login(daemon: Daemon, lab: Lab) -> None:
    daemon.start()
    fetch(lab, "p2")  # the router learns the phone's MAC from its first packets
    assert daemon.client.call("login", ip=PHONE2.ip, free=True)["kind"] == "free"
    assert fetch(lab, "p2") == "UPSTREAM"


def test_expiry_by_time(daemon: Daemon, lab: Lab) -> None:
    code = daemon.voucher("Kilat", time_s=3)
    daemon.start()
    fetch(lab, "p1")
    daemon.client.call("login", ip=PHONE1.ip, code=code)
    assert fetch(lab, "p1") == "UPSTREAM"
    took = wait_for(lambda: fetch(lab, "p1") == "PORTAL", 10)
    assert took < 3 + 3 * POLL_S + 3
    with pytest.raises(ControlError) as caught:
        daemon.client.call("login", ip=PHONE1.ip, code=code)
    assert caught.value.code == "voucher_rejected" and caught.value.extra["state"] == "used_up"


def test_expiry_by_data(daemon: Daemon, lab: Lab) -> None:
    code = daemon.voucher("Hemat", data_bytes=2_000_000)
    daemon.start()
    fetch(lab, "p1")
    daemon.client.call("login", ip=PHONE1.ip, code=code)
    got = lab.agent("p1", "recv", UPSTREAM, str(TCP_PORT), "3000000", timeout=10)
    assert got["received"] == 3_000_000  # one poll may overshoot; the next one cuts
    wait_for(lambda: fetch(lab, "p1") == "PORTAL", 3 * POLL_S + 3)
    check = vouchers_check(daemon, code)
    assert check["state"] == "used_up" and check["used_bytes"] >= 3_000_000


def test_expiry_by_idle_timeout(daemon: Daemon, lab: Lab) -> None:
    code = daemon.voucher("Diam", idle_s=3)
    daemon.start()
    fetch(lab, "p1")
    daemon.client.call("login", ip=PHONE1.ip, code=code)
    assert fetch(lab, "p1") == "UPSTREAM"
    time.sleep(3 + 2 * POLL_S + 1)  # silence longer than the idle timeout
    assert fetch(lab, "p1") == "PORTAL"
    # idle ends the session, not the voucher: the resident logs in again and goes on
    daemon.client.call("login", ip=PHONE1.ip, code=code)
    assert fetch(lab, "p1") == "UPSTREAM"


def hotspotctl(daemon: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hotspotd.cli", "--config", str(daemon.config), *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def vouchers_check(daemon: Daemon, code: str) -> dict[str, object]:
    result: dict[str, object] = json.loads(
        hotspotctl(daemon, "voucher", "check", code, "--json").stdout
    )
    return result


def test_a_revoked_card_is_cut_before_hotspotctl_returns(daemon: Daemon, lab: Lab) -> None:
    code = daemon.voucher("Harian", time_s=3600)
    daemon.start()
    fetch(lab, "p1")
    daemon.client.call("login", ip=PHONE1.ip, code=code)
    assert fetch(lab, "p1") == "UPSTREAM"
    started = time.monotonic()
    revoked = hotspotctl(daemon, "voucher", "revoke", code)
    print(f"hotspotctl voucher revoke returned after {time.monotonic() - started:.2f} s")
    assert revoked.returncode == 0, revoked.stderr
    assert f"cut off: {PHONE1.ip}" in revoked.stdout
    assert fetch(lab, "p1") == "PORTAL"  # at once: not at the next reconcile, a minute later
    with pytest.raises(ControlError) as caught:
        daemon.client.call("login", ip=PHONE1.ip, code=code)
    assert caught.value.reason == "revoked"


def test_kill9_keeps_paid_devices_and_loses_at_most_one_poll(daemon: Daemon, lab: Lab) -> None:
    code = daemon.voucher("Harian", time_s=3600)
    daemon.start()
    fetch(lab, "p1")
    daemon.client.call("login", ip=PHONE1.ip, code=code)
    sent = lab.agent("p1", "recv", UPSTREAM, str(TCP_PORT), "1000000", timeout=10)["received"]
    time.sleep(POLL_S * 2.5)  # at least two polls write the bytes
    daemon.kill9()
    # the kernel keeps forwarding while the daemon is dead: a crash cuts nobody
    assert fetch(lab, "p1") == "UPSTREAM"
    daemon.start()
    assert fetch(lab, "p1") == "UPSTREAM"
    used = vouchers_check(daemon, code)["used_bytes"]
    assert isinstance(used, int) and used >= sent


def test_reboot_rebuilds_the_table_before_serving(daemon: Daemon, lab: Lab) -> None:
    code = daemon.voucher("Harian", time_s=3600)
    daemon.start()
    fetch(lab, "p1")
    daemon.client.call("login", ip=PHONE1.ip, code=code)
    lab.agent("p1", "recv", UPSTREAM, str(TCP_PORT), "500000", timeout=10)
    time.sleep(POLL_S * 2.5)
    before = vouchers_check(daemon, code)["used_bytes"]
    daemon.kill9()
    daemon.flush()  # as after a power cut: no table, and forwarding off until hotspotd is up
    assert lab.exec("r", "nft", "list", "table", "inet", "hotspot").returncode != 0
    assert lab.exec("r", "sysctl", "-n", "net.ipv4.ip_forward").stdout.strip() == "0"
    assert not connects(lab, "p1") and not connects(lab, "p2")  # the door is shut, not open
    poller = first_connect(lab, "p1", within=5.0)
    started = daemon.spawn()
    assert poller.stdout is not None
    line = poller.stdout.readline().strip()
    assert line, "the paid phone never got through"
    took = float(line) - started
    print(f"paid phone forwarding again {took:.2f} s after hotspotd start")
    assert took < 2.0, f"forwarding again {took:.2f} s after start"
    assert fetch(lab, "p2") == "PORTAL"  # and the door is the hotspot's, not an open one
    wait_for(lambda: daemon.socket.exists(), 5.0)
    # counters began again at zero: new bytes are charged once, old ones are not lost
    lab.agent("p1", "recv", UPSTREAM, str(TCP_PORT), "400000", timeout=10)
    time.sleep(POLL_S * 2.5)
    after = vouchers_check(daemon, code)["used_bytes"]
    assert isinstance(before, int) and isinstance(after, int)
    assert 400_000 <= after - before <= 400_000 * 1.1


def test_sigterm_leaves_devices_forwarding(daemon: Daemon, lab: Lab) -> None:
    code = daemon.voucher("Harian", time_s=3600)
    daemon.start()
    fetch(lab, "p1")
    daemon.client.call("login", ip=PHONE1.ip, code=code)
    assert daemon.stop() == 0
    assert not daemon.socket.exists()
    assert fetch(lab, "p1") == "UPSTREAM"


def test_real_daemon_survives_a_thousand_malformed_requests(daemon: Daemon, lab: Lab) -> None:
    daemon.start()
    junk = [b"{", b"[]\n", b"\xff\n", b'{"op":5}\n', b'{"op":"login","ip":"1.2.3.4"}\n',
            b"x" * 20000 + b"\n", b'{"op":"rm -rf /"}\n', b"\n"]  # fmt: skip
    deadline = time.monotonic() + 60
    for i in range(1000):
        assert time.monotonic() < deadline
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(str(daemon.socket))
            s.sendall(junk[i % len(junk)])
            s.shutdown(socket.SHUT_WR)
            answer = s.recv(65536)
            assert answer == b"" or json.loads(answer.splitlines()[0])["ok"] is False
    assert daemon.operator.call("online") == []
    assert daemon.proc is not None and daemon.proc.poll() is None
    assert os.stat(daemon.socket).st_mode & 0o777 == 0o660
