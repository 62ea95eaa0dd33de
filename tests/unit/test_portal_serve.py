"""`hotspot-portal` as a process: waitress for HTTP and, with a certificate, HTTPS too."""

from __future__ import annotations

import http.client
import json
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

from sqlalchemy import Engine

from tests.conftest import require


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
    config_file.write_text(
        config_file.read_text()
        + f'\n[portal]\nport = {http_port}\nhttps_port = {https_port}\ntls_cert = "{cert}"\n'
        f'tls_key = "{key}"\nsecret_key_file = "{tmp_path / "secret"}"\n'
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", "from portal.serve import run; run()", "--config",
         str(config_file), "--host", "127.0.0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
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
