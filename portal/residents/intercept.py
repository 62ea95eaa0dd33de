"""Every plain-HTTP request that came for another host, answered without Flask.

The firewall sends an unauthorized device's tcp/80 here with its own source address and the
original Host header. Such a request is an OS captive probe (redirected to the portal, so the
login sheet opens) or any page (redirected, its URL kept on the server for after login). After
a power cut every phone sends these at once, so they are answered by this thin WSGI layer in
front of the Flask app: no request context, no session, no template, no query.

A connection that reached us for another host must not be reused after login: the browser keeps
it in its pool for that host and, once the phone is logged in, would send the page it first
asked for down the same connection — to us again. These answers therefore carry no
Content-Length, and waitress closes the connection after them (a WSGI app may not send
`Connection` itself, PEP 3333); the browser opens a new one, which now goes out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from html import escape
from ipaddress import IPv4Address, IPv4Network
from typing import Any
from urllib.parse import quote

from sqlalchemy.exc import SQLAlchemyError

from portal.residents.online import OnlineAddresses
from portal.residents.originals import OriginalUrls
from portal.web import security

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

# What the real servers answer once a device is online: a probe that still reaches the portal
# over a connection opened before login gets the same, so the login sheet closes.
_APPLE = "<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>"
_FIREFOX = (
    '<meta http-equiv="refresh" content="0;url=https://support.mozilla.org/kb/captive-portal"/>'
)
PROBES: dict[str, tuple[int, str, str]] = {
    "/generate_204": (204, "", "text/plain"),  # Android
    "/gen_204": (204, "", "text/plain"),
    "/hotspot-detect.html": (200, _APPLE, "text/html"),  # Apple
    "/library/test/success.html": (200, _APPLE, "text/html"),
    "/connecttest.txt": (200, "Microsoft Connect Test", "text/plain"),  # Windows
    "/ncsi.txt": (200, "Microsoft NCSI", "text/plain"),
    "/redirect": (302, "", "text/plain"),
    "/canonical.html": (200, _FIREFOX, "text/html"),  # Firefox
    "/success.txt": (200, "success\n", "text/plain"),
}
_REASONS = {200: "200 OK", 204: "204 No Content", 302: "302 Found"}


def _stream(body: bytes) -> Iterator[bytes]:
    """The body as an iterator, not a list: waitress then adds no Content-Length (see above)."""
    if body:
        yield body


class Intercept:
    """WSGI middleware: requests for our own host go on to the app; the rest are answered here."""

    def __init__(
        self,
        app: WSGIApp,
        *,
        own_hosts: Iterable[str],
        lan: IPv4Network,
        portal_url: str,
        status_url: str,
        online: OnlineAddresses,
        originals: OriginalUrls,
    ) -> None:
        self.app = app
        self.own_hosts = frozenset(h.lower() for h in own_hosts)
        self.lan = lan
        self.portal_url = portal_url
        self.status_url = status_url
        self.online = online
        self.originals = originals

    def ours(self, host: str) -> bool:
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return name.lower() in self.own_hosts

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        host = environ.get("HTTP_HOST")
        if not host or self.ours(host):  # no Host (HTTP/1.0): the server's own name
            return self.app(environ, start_response)
        ip = self._device(environ.get("REMOTE_ADDR", ""))
        probe = PROBES.get(environ.get("PATH_INFO", ""))
        if probe is not None and ip is not None and self._online(ip):
            status, body, mimetype = probe
            if status == 302:
                return self._redirect(start_response, self.status_url)
            return self._answer(start_response, status, body.encode(), mimetype)
        if probe is None and ip is not None:
            self._remember(environ, ip, host)
        return self._redirect(start_response, self.portal_url)

    def _online(self, ip: str) -> bool:
        try:
            return ip in self.online
        except SQLAlchemyError:  # no database yet: the portal's own pages say so (503)
            return False

    def _device(self, remote: str) -> str | None:
        try:
            ip = IPv4Address(remote)
        except ValueError:
            return None
        return str(ip) if ip in self.lan else None

    def _remember(self, environ: dict[str, Any], ip: str, host: str) -> None:
        # Only a page the resident opened is kept (a browser asks for text/html), the latest
        # one; an app's background request or a favicon does not replace it.
        if environ.get("REQUEST_METHOD") != "GET":
            return
        if "text/html" not in environ.get("HTTP_ACCEPT", "") or not security.valid_host(host):
            return
        try:
            url = request_uri(environ, host)
        except (UnicodeError, ValueError):
            return
        original = security.safe_original(url)
        if original is not None:
            self.originals.remember(ip, original)

    def _answer(
        self, start_response: StartResponse, status: int, body: bytes, mimetype: str
    ) -> Iterable[bytes]:
        headers = [("Content-Type", f"{mimetype}; charset=utf-8"), *security.HEADERS]
        start_response(_REASONS[status], headers)
        return _stream(body if status != 204 else b"")

    def _redirect(self, start_response: StartResponse, location: str) -> Iterable[bytes]:
        body = f'<a href="{escape(location)}">{escape(location)}</a>'.encode()
        headers = [
            ("Location", location),
            ("Content-Type", "text/html; charset=utf-8"),
            *security.HEADERS,
        ]
        start_response(_REASONS[302], headers)
        return _stream(body)


# What may stand unescaped in a URI's path and query (RFC 3986), "%" included: escapes the
# browser already made are kept as they are.
_URI_SAFE = "/:@!$&'()*+,;=-._~%?"


def request_uri(environ: dict[str, Any], host: str) -> str:
    """The URL the browser asked for, as plain ASCII.

    WSGI gives the path as the request's bytes decoded as Latin-1; they go back to those bytes
    and are percent-encoded, so `/kabar/%C3%A9` comes back as it was sent. (Werkzeug's
    `get_current_url` makes an IRI of them, `/kabar/Ã©`, which the redirect after login then
    encodes a second time: `/kabar/%C3%83%C2%A9`.)
    """
    scheme = environ.get("wsgi.url_scheme", "http")
    path = quote(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""), _URI_SAFE,
                 encoding="latin-1")  # fmt: skip
    query = environ.get("QUERY_STRING", "")
    if query:
        path += "?" + quote(query, _URI_SAFE, encoding="latin-1")
    return f"{scheme}://{host}{path}"
