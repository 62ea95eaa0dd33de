"""Plain HTTP on the operator UI's HTTPS port gets a redirect to https://, on the same port.

A manager who types `http://portal.lan:8444/` would otherwise get cheroot's "400 plain HTTP
request sent to an HTTPS port" (or, in most browsers, a garbled page). cheroot detects plain
HTTP only once OpenSSL has failed the handshake, on its accepting thread; here the first byte
is peeked instead (a TLS connection always opens with a handshake record, 0x16), and a plain
request is answered by a short-lived thread of its own, so a slow client never holds the
accepting thread past `FIRST_BYTE_S`, and never holds a thread past `HEAD_S`.

The Location names the host the browser asked for only if its Host header is a plain host
name or address; anything else gets the configured `portal.hostname`. The path is kept,
percent-encoded, so nothing the browser sent can become a header of ours.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import threading
import time
import urllib.parse
from typing import Any

from cheroot import errors
from cheroot.ssl.builtin import BuiltinSSLAdapter

log = logging.getLogger("hotspot.operator")

TLS_HANDSHAKE = 0x16  # the record type every TLS connection opens with
FIRST_BYTE_S = 3.0  # the accepting thread waits this long at most for a client's first byte
HANDSHAKE_S = 10.0  # ... and this long for the rest of a TLS handshake (cheroot's default)
HEAD_S = 5.0  # a plain request's head must arrive within this, from its first byte
MAX_HEAD = 8 * 1024
MAX_PLAIN = 8  # plain requests answered at once; more are closed unanswered
_REQUEST_LINE = re.compile(rb"^([A-Z]{3,10}) (\S{1,2048}) HTTP/1\.[01]$")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
_PATH_SAFE = "/?=&%:@!$'()*+,;-._~"


class PlainHttpRedirected(errors.FatalSSLAlert):
    """cheroot drops the connection (and logs this); our thread answers and closes it."""


def safe_host(header: str | None, fallback: str) -> str:
    """The host of a Host header for a Location (brackets kept for IPv6), else `fallback`."""
    value = (header or "").strip().lower()
    if value.startswith("["):
        literal, bracket, rest = value[1:].partition("]")
        if not bracket:
            return fallback
        try:
            address = ipaddress.IPv6Address(literal)
        except ValueError:
            return fallback
        return (
            f"[{address.compressed}]" if rest == "" or re.fullmatch(r":\d{1,5}", rest) else fallback
        )
    host, _, port = value.partition(":")
    if port and not re.fullmatch(r"\d{1,5}", port):
        return fallback
    if len(host) > 253 or not _HOSTNAME.match(host):
        return fallback
    return host


def redirect_for(head: bytes, fallback_host: str, port: int) -> bytes | None:
    """The answer to a plain request's head, or None when it is not an HTTP request."""
    lines = head.split(b"\r\n") if b"\r\n" in head else head.split(b"\n")
    match = _REQUEST_LINE.match(lines[0])
    if match is None:
        return None
    target = match.group(2).decode("latin-1")
    path = target if target.startswith("/") else "/"  # absolute-form: not ours to follow
    host_header = None
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() == b"host":
            host_header = value.decode("latin-1")
            break
    host = safe_host(host_header, fallback_host)
    location = f"https://{host}:{port}{urllib.parse.quote(path, safe=_PATH_SAFE)}"
    body = f"{location}\n".encode("ascii")
    return (
        f"HTTP/1.1 301 Moved Permanently\r\nLocation: {location}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode("ascii") + body


def read_head(sock: socket.socket, seconds: float, limit: int) -> bytes | None:
    """The request head (up to the blank line) within `seconds` and `limit` bytes, or None."""
    deadline = time.monotonic() + seconds
    data = b""
    while b"\r\n\r\n" not in data and b"\n\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0 or len(data) > limit:
            return None
        sock.settimeout(left)
        try:
            chunk = sock.recv(limit + 1 - len(data))
        except OSError:
            return None
        if not chunk:
            return None
        data += chunk
    return data


class RedirectingSSLAdapter(BuiltinSSLAdapter):  # type: ignore[misc]
    """cheroot's TLS adapter, which sends plain HTTP to https:// on the same port."""

    def __init__(self, certificate: str, private_key: str, *, fallback_host: str) -> None:
        super().__init__(certificate, private_key)
        self.fallback_host = fallback_host
        self._plain = threading.BoundedSemaphore(MAX_PLAIN)

    def wrap(self, sock: socket.socket) -> Any:
        try:
            sock.settimeout(FIRST_BYTE_S)
            first = sock.recv(1, socket.MSG_PEEK)
        except OSError as exc:
            sock.close()
            raise errors.FatalSSLAlert(f"nothing within {FIRST_BYTE_S:g} s: {exc}") from None
        if not first:
            sock.close()
            raise errors.FatalSSLAlert("closed before its first byte")
        if first[0] != TLS_HANDSHAKE:
            if self._plain.acquire(blocking=False):
                threading.Thread(
                    target=self._answer_plain, args=(sock,), name="plain-http", daemon=True
                ).start()
            else:
                sock.close()
            raise PlainHttpRedirected("plain HTTP on the HTTPS port: redirected to https://")
        sock.settimeout(HANDSHAKE_S)
        return super().wrap(sock)

    def _answer_plain(self, sock: socket.socket) -> None:
        try:
            head = read_head(sock, HEAD_S, MAX_HEAD)
            answer = redirect_for(head, self.fallback_host, sock.getsockname()[1]) if head else None
            if answer is not None:
                sock.settimeout(HEAD_S)
                sock.sendall(answer)
                sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            log.debug("plain HTTP client gone: %s", exc)
        finally:
            sock.close()
            self._plain.release()
