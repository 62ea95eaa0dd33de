"""CSRF tokens, security headers, and the rules for where a redirect may go.

The CSRF token lives in the signed session cookie and must come back in every POST form;
no JavaScript is needed. Every page carries a Content-Security-Policy without scripts.
"""

from __future__ import annotations

import hmac
import re
import secrets
from urllib.parse import urlsplit

from flask import Flask, Response, abort, request, session

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


def csrf_token() -> str:
    token = session.get("csrf")
    if not isinstance(token, str) or len(token) != 43:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def _check_csrf() -> None:
    if request.method != "POST":
        return
    sent = request.form.get("csrf", "")
    expected = session.get("csrf")
    if not isinstance(expected, str) or not hmac.compare_digest(sent, expected):
        abort(400, description="csrf")


def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    if "Cache-Control" not in response.headers:
        # a cached redirect or status page would be wrong a minute later
        response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    app.before_request(_check_csrf)
    app.after_request(_headers)
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
