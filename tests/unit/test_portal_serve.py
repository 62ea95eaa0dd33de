"""`hotspot-portal` as a process: waitress for HTTP and, with a certificate, HTTPS too."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

from sqlalchemy import Engine

from tests.conftest import require

PORTAL = [sys.executable, "-c", "from portal.serve import run; run()"]


def portal_command(config_file: Path, portal_keys: str) -> list[str]:
    """hotspot-portal on 127.0.0.1 with these lines added to the test config's [portal]."""
    text = config_file.read_text()
    config_file.write_text(text.replace("[portal]\n", "[portal]\n" + portal_keys))
    return [*PORTAL, "--config", str(config_file), "--host", "127.0.0.1"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serves_http_and_https(engine: Engine, config_file: Path, tmp_path: Path) -> None:
    require(shutil.which("openssl") is not None, "needs openssl to make a test certificate")
    cert, key = tmp_path / "portal.crt", tmp_path / "portal.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=portal.lan", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    http_port, https_port = free_port(), free_port()
    command = portal_command(
        config_file,
        f'port = {http_port}\nhttps_port = {https_port}\ntls_cert = "{cert}"\n'
        f'tls_key = "{key}"\nsecret_key_file = "{tmp_path / "secret"}"\n',
    )
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz", timeout=10) as r:
            assert r.status == 200 and json.load(r)["ok"] is True
            assert r.headers["Server"] == "hotspot-portal"
        context = ssl.create_default_context(cafile=str(cert))
        context.check_hostname = False
        url = f"https://127.0.0.1:{https_port}/api/captive"
        with urllib.request.urlopen(url, timeout=10, context=context) as r:
            assert r.headers["Content-Type"] == "application/captive+json"
            body = json.load(r)
        assert body["captive"] is True
        assert body["user-portal-url"] == f"https://portal.lan:{https_port}/"
        assert (tmp_path / "secret").stat().st_mode & 0o777 == 0o600

        # A connection that came for another host (the firewall's redirect) is closed after
        # the answer, so a browser cannot reuse it once the phone is logged in; ours stay open.
        conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
        conn.request("GET", "/kabar", headers={"Host": "berita.example"})
        redirected = conn.getresponse()
        redirected.read()
        assert redirected.status == 302 and redirected.will_close
        conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
        conn.request("GET", "/healthz")
        own = conn.getresponse()
        own.read()
        assert own.status == 200 and not own.will_close
        conn.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0


def workers_of(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(c) for c in (task / "children").read_text().split()}
    return found


def test_workers_share_the_socket_and_the_key_and_come_back_when_killed(
    engine: Engine, config_file: Path
) -> None:
    port = free_port()
    command = portal_command(config_file, f"port = {port}\nworkers = 2\n")
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    now: set[int] = set()
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
        first = workers_of(proc.pid)
        assert len(first) == 2

        # No secret_key_file: the key is made once, before the fork, so a form served by one
        # worker is accepted by the other. New connections land on either worker.
        for _ in range(12):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/", headers={"Host": "portal.lan"})
            page = conn.getresponse()
            cookie = page.getheader("Set-Cookie", "").split(";")[0]
            token = re.search(r'name="csrf" value="([^"]+)"', page.read().decode())
            conn.close()
            assert token and cookie.startswith("hs=")
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            body = urllib.parse.urlencode({"csrf": token.group(1), "lang": "en", "next": "/"})
            conn.request("POST", "/bahasa", body, {"Host": "portal.lan", "Cookie": cookie,
                         "Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
            assert conn.getresponse().status == 303
            conn.close()

        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            now = workers_of(proc.pid)
            if len(now) == 2 and victim not in now:
                break
            time.sleep(0.1)
        assert len(now) == 2 and victim not in now, now
        for _ in range(6):  # still answered, whichever worker takes it
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as r:
                assert r.status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    assert not [pid for pid in now if Path(f"/proc/{pid}").exists()]  # SIGTERM ended them all


def test_a_worker_that_cannot_start_stops_the_portal_at_once(
    engine: Engine, config_file: Path, tmp_path: Path
) -> None:
    """A certificate that is not there: the first worker cannot serve HTTPS, and the portal
    says so and exits instead of waiting for it."""
    port, https_port = free_port(), free_port()
    command = portal_command(
        config_file,
        f"port = {port}\nhttps_port = {https_port}\nworkers = 2\n"
        f'tls_cert = "{tmp_path / "missing.crt"}"\ntls_key = "{tmp_path / "missing.key"}"\n',
    )
    started = time.monotonic()
    proc = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "cannot serve HTTPS" in proc.stderr and "did not start" in proc.stderr
    assert time.monotonic() - started < 20
    assert "ready" not in proc.stdout


def test_a_huge_body_is_refused_before_it_is_read_and_nothing_is_spooled(
    engine: Engine, config_file: Path, tmp_path: Path
) -> None:
    """waitress's default would take 1 GiB and spool it to /tmp, on the database's SD card."""
    port = free_port()
    run_dir = tmp_path / "portal-run"
    command = portal_command(config_file, f"port = {port}\nworkers = 1\n")
    spool = tmp_path / "spool"
    spool.mkdir()
    env = {**os.environ, "TMPDIR": str(spool)}  # where an unchecked spool would land
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(
                b"POST /login HTTP/1.1\r\nHost: portal.lan\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\n"
                b"Content-Length: 100000000\r\n\r\n"
            )
            sent = 0
            try:
                for _ in range(64):  # 4 MB of the promised 100 MB, then look
                    s.sendall(b"x" * 65536)
                    sent += 65536
            except OSError:
                pass  # the portal closed the connection early: good
            s.settimeout(10)
            answer = s.recv(4096)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert list(spool.iterdir()) == []  # nothing went to TMPDIR
        assert not any((run_dir / "tmp").iterdir())  # nor to the portal's own
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:  # chunked, too
            s.sendall(
                b"POST /login HTTP/1.1\r\nHost: portal.lan\r\nTransfer-Encoding: chunked\r\n\r\n"
                + (b"10000\r\n" + b"x" * 0x10000 + b"\r\n") * 4
            )
            s.settimeout(10)
            assert s.recv(4096).startswith(b"HTTP/1.1 413")
        assert list(spool.iterdir()) == []
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
