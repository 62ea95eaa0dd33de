"""The real portal process and the real hotspotd in the lab's router, a phone's browser in p1.

The phone opens an upstream page, is sent to the portal by the firewall, logs in with a real
voucher (portal -> control socket -> daemon -> nftables), and lands on the page it first
asked for, served by the upstream host.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.netns.lab import PHONE1, ROUTER_LAN, ROUTER_WAN, UPSTREAM, Lab
from tests.netns.test_daemon import Daemon

pytestmark = pytest.mark.netns

BROWSER = str(Path(__file__).with_name("browser.py"))
PORT = 8081  # the lab's stub portal keeps 8080; the daemon's DNAT follows this config


class Portal:
    def __init__(self, lab: Lab, daemon: Daemon) -> None:
        text = daemon.config.read_text().replace(
            "port = 8080", f'port = {PORT}\nhostname = "{ROUTER_LAN}"'
        )
        assert f"port = {PORT}" in text
        daemon.config.write_text(text)
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", lab.ns("r"), sys.executable, "-c",
             "from portal.serve import run; run()", "--config", str(daemon.config)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        lab.procs.append(self.proc)  # killed with the lab if the test dies
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"portal did not start: {self.proc.stderr.read()[-2000:]}")  # type: ignore[union-attr]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)


def test_phone_opens_a_page_logs_in_on_the_portal_and_gets_that_page(
    daemon: Daemon, lab: Lab
) -> None:
    code = daemon.voucher("Harian", time_s=3600)
    portal = Portal(lab, daemon)
    try:
        daemon.start()
        wanted = f"http://{UPSTREAM}/berita/hari-ini?desa=sukamaju"
        before = len(lab.log_lines("up-http"))
        proc = lab.exec("p1", sys.executable, BROWSER, wanted, code.lower(), timeout=60)
        assert proc.returncode == 0, proc.stderr
        got = json.loads(proc.stdout)
        assert got["landed"] == f"http://{ROUTER_LAN}:{PORT}/", got
        assert got["welcome"] is True
        assert got["after_login"] == wanted, got
        assert got["body"] == "UPSTREAM"
        served = lab.log_lines("up-http")[before:]
        # hotspotd masquerades behind wan0 (network.masquerade is on by default): the
        # upstream sees the router's uplink address, as an ISP's modem would
        assert served == [f"{ROUTER_WAN} /berita/hari-ini?desa=sukamaju"]
        status = daemon.client.call("status", ip=PHONE1.ip)
        assert status["plan"] == "Harian" and status["mac"] == PHONE1.mac
    finally:
        portal.stop()
