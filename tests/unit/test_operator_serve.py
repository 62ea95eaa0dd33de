"""`hotspot-operator`'s listener: HTTPS, and plain HTTP on the same port sent to https://."""

from __future__ import annotations

import http.client
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from sqlalchemy import Engine

from hotspotd import config
from portal.operator import plain_http
from portal.operator.app import create_operator_app
from portal.operator.serve import server
from tests.conftest import NOW, require
from tests.fakes import FakeClock


@dataclass
class Listener:
    port: int
    context: ssl.SSLContext


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def listener(engine: Engine, config_file: Path, tmp_path: Path) -> Iterator[Listener]:
    """The real cheroot server of serve.server() on 127.0.0.1, a throwaway certificate."""
    require(shutil.which("openssl") is not None, "needs openssl to make a test certificate")
    cert, key = tmp_path / "operator.crt", tmp_path / "operator.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=portal.lan", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    base = config.load(config_file)
    cfg = replace(base, operator=replace(base.operator, port=free_port(), tls_cert=cert,
                                         tls_key=key))  # fmt: skip
    app = create_operator_app(cfg, {"TESTING": True}, clock=FakeClock(NOW))
    srv = server(app, cfg, "127.0.0.1")
    srv.prepare()
    thread = threading.Thread(target=srv.serve, daemon=True)
    thread.start()
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    try:
        yield Listener(cfg.operator.port, context)
    finally:
        srv.stop()
        thread.join(timeout=10)


def plain(port: int, raw: bytes, timeout: float = 10) -> bytes:
    """Send `raw` over plain TCP and read the answer until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
        return data


def head_of(answer: bytes) -> tuple[str, dict[str, str]]:
    head = answer.split(b"\r\n\r\n")[0].decode("ascii")
    status, *lines = head.split("\r\n")
    return status, {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}


def https_login_page(listener: Listener, timeout: float = 10) -> int:
    conn = http.client.HTTPSConnection(
        "127.0.0.1", listener.port, context=listener.context, timeout=timeout
    )
    try:
        conn.request("GET", "/masuk")
        response = conn.getresponse()
        body = response.read()
        assert b"<form" in body
        return response.status
    finally:
        conn.close()


def test_https_serves_and_plain_http_is_sent_to_https_on_the_same_port(
    listener: Listener,
) -> None:
    port = listener.port
    assert https_login_page(listener) == 200
    status, headers = head_of(
        plain(port, b"GET /masuk?x=1 HTTP/1.1\r\nHost: portal.lan:%d\r\n\r\n" % port)
    )
    assert status == "HTTP/1.1 301 Moved Permanently"
    assert headers["location"] == f"https://portal.lan:{port}/masuk?x=1"
    assert headers["connection"] == "close"
    # The address typed instead of the name, and a browser that sends no Host at all.
    _, headers = head_of(plain(port, b"GET / HTTP/1.1\r\nHost: 10.66.0.1:8444\r\n\r\n"))
    assert headers["location"] == f"https://10.66.0.1:{port}/"
    _, headers = head_of(plain(port, b"GET /online HTTP/1.0\r\n\r\n"))
    assert headers["location"] == f"https://portal.lan:{port}/online"
    assert https_login_page(listener) == 200  # and HTTPS still works after them


ODD_HOSTS = [
    b"evil.example/\r\nSet-Cookie: x=1",
    b"portal.lan@evil.example",
    b"<script>alert(1)</script>",
    b"evil.example:80/x",
    b"evil.example\tfoo",
    b"a" * 300,
    b"[::1",
    b"[evil.example]",
]


def test_an_odd_host_never_reaches_the_location(listener: Listener) -> None:
    for host in ODD_HOSTS:
        answer = plain(listener.port, b"GET /x HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
        status, headers = head_of(answer)
        assert status.startswith("HTTP/1.1 301"), host
        assert headers["location"] == f"https://portal.lan:{listener.port}/x", host
        assert b"evil" not in answer and b"<" not in answer and b"Set-Cookie" not in answer


def test_the_path_is_kept_but_encoded() -> None:
    answer = plain_http.redirect_for(
        b'GET /a"b<c>%0d%0a HTTP/1.1\r\nHost: portal.lan\r\n\r\n', "portal.lan", 8444
    )
    assert answer is not None
    _, headers = head_of(answer)
    assert headers["location"] == "https://portal.lan:8444/a%22b%3Cc%3E%0d%0a"
    # absolute-form (a proxy's request) is not followed to its host
    answer = plain_http.redirect_for(
        b"GET http://evil.example/ HTTP/1.1\r\nHost: portal.lan\r\n\r\n", "portal.lan", 8444
    )
    assert answer is not None and b"evil" not in answer
    assert plain_http.redirect_for(b"\x00\x01garbage\r\n\r\n", "portal.lan", 8444) is None
    assert plain_http.safe_host("[FE80::1]:8444", "portal.lan") == "[fe80::1]"
    assert plain_http.safe_host("Portal.LAN", "portal.lan") == "portal.lan"


def test_slow_and_silent_clients_do_not_hold_the_server(
    listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plain_http, "HEAD_S", 1.5)
    monkeypatch.setattr(plain_http, "FIRST_BYTE_S", 1.0)
    port = listener.port
    # Half a request head, then nothing: closed unanswered after HEAD_S, while HTTPS answers.
    half = socket.create_connection(("127.0.0.1", port), timeout=30)
    half.sendall(b"GET / HTTP/1.1\r\nHo")
    start = time.monotonic()
    assert https_login_page(listener, timeout=5) == 200
    assert time.monotonic() - start < 1.0  # not after HEAD_S: another thread waits for it
    assert half.recv(100) == b""  # closed, no answer
    assert time.monotonic() - start < plain_http.HEAD_S + 2
    half.close()
    # More slow clients than the answering threads: the extra ones are closed at once.
    slow = []
    for _ in range(plain_http.MAX_PLAIN + 3):
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.sendall(b"G")
        slow.append(sock)
    time.sleep(0.3)
    start = time.monotonic()
    assert https_login_page(listener, timeout=5) == 200
    assert time.monotonic() - start < 2.0
    # A client that sends nothing holds the accepting thread FIRST_BYTE_S at most.
    silent = socket.create_connection(("127.0.0.1", port), timeout=30)
    time.sleep(0.1)
    start = time.monotonic()
    assert https_login_page(listener, timeout=10) == 200
    assert time.monotonic() - start < plain_http.FIRST_BYTE_S + 1.5
    assert silent.recv(100) == b""
    for sock in [*slow, silent]:
        sock.close()
