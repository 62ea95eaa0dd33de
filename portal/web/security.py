"""CSRF tokens, security headers, and the rules for where a redirect may go.

Every POST form carries a CSRF token bound to the browser (a random id in a cookie) and to the
device's address; no JavaScript is needed, no session is kept. Every page carries a
Content-Security-Policy without scripts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from urllib.parse import urlsplit

from flask import Flask, Response, abort, current_app, g, request

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; "
    # after login the form's redirect goes on to the page the phone first asked for
    "form-action 'self' http: https:; frame-ancestors 'none'"
)
_HOST = re.compile(
    r"^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
    r"(?::[0-9]{1,5})?$",
    re.I,
)
_UNSAFE = re.compile(r"[\x00-\x20\x7f\\]")
MAX_URL = 2000


# Stands in for the token in a page rendered once and kept (see portal.residents.views.kept_page).
PLACEHOLDER = "csrf-" + secrets.token_hex(16)
COOKIE = "hs"
_BROWSER = re.compile(r"^[A-Za-z0-9_-]{43}$")


def _browser() -> str:
    """This browser's random id from its cookie, or a new one (set on the answer)."""
    browser = g.get("csrf_browser")
    if browser is None:
        browser = request.cookies.get(COOKIE, "")
        if not _BROWSER.match(browser):
            browser = secrets.token_urlsafe(32)
            g.csrf_new = True
        g.csrf_browser = browser
    return str(browser)


def _token_for(browser: str, device: str) -> str:
    key: bytes = current_app.config["SECRET_KEY"]
    mac = hmac.new(key, f"csrf|{browser}|{device}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def csrf_token() -> str:
    """The token for this browser on this device's address: an HMAC of both under the secret
    key. A page of another site cannot read it; a cookie planted from another device (cookie
    tossing) is useless without that device's address; nothing is kept on the server."""
    if g.get("csrf_placeholder"):
        return PLACEHOLDER
    return _token_for(_browser(), request.remote_addr or "")


def _check_csrf() -> None:
    if request.method != "POST":
        return
    browser = request.cookies.get(COOKIE, "")
    sent = request.form.get("csrf", "")
    if not _BROWSER.match(browser) or not hmac.compare_digest(
        sent, _token_for(browser, request.remote_addr or "")
    ):
        abort(400, description="csrf")


def _set_browser_cookie(response: Response) -> Response:
    if g.get("csrf_new"):
        response.set_cookie(COOKIE, g.csrf_browser, httponly=True, samesite="Lax")
    return response


# On every answer, the portal's pages and the redirects of portal.residents.intercept alike.
HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    # a cached redirect or status page would be wrong a minute later
    ("Cache-Control", "no-store"),
)


def _headers(response: Response) -> Response:
    # one pass over the few headers there are (Headers.setdefault raises and catches a
    # KeyError per miss: a tenth of the welcome page's time under a power-cut burst)
    present = {name.lower() for name, _value in response.headers.items()}
    for name, value in HEADERS:
        if name.lower() not in present:
            response.headers.add(name, value)
    return response


def init_app(app: Flask) -> None:
    app.before_request(_check_csrf)
    app.after_request(_headers)
    app.after_request(_set_browser_cookie)
    app.jinja_env.globals["csrf_token"] = csrf_token


def valid_host(host: str) -> bool:
    return len(host) <= 260 and bool(_HOST.match(host))


def safe_original(url: str) -> str | None:
    """The URL a device first asked for, if it may be redirected to after login, else None.

    Only an absolute http(s) URL with a plain host name or address, without whitespace,
    control characters or backslashes (no header injection, no `javascript:`, no `//host`).
    """
    if len(url) > MAX_URL or _UNSAFE.search(url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc or "@" in parts.netloc:
        return None
    if not valid_host(parts.netloc):
        return None
    return url


def local_path(target: str | None, default: str = "/") -> str:
    """A path on this portal to go back to: `/x`, never `//host`, `/\\host` or `http:`."""
    if not target or len(target) > 200 or not target.startswith("/") or target.startswith("//"):
        return default
    if _UNSAFE.search(target) or ":" in target.split("?")[0]:
        return default
    return target
