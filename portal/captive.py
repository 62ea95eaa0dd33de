"""The residents' pages, and what a phone that is not logged in gets for any plain-HTTP URL.

The firewall sends an unauthorized device's tcp/80 here with its own source address and the
original Host header. A request for another host is an OS captive probe (redirected to the
portal, so the login sheet opens) or any page (redirected, its URL kept for after login).
"""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    current_app,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException

from hotspotd.core import codes
from portal import i18n, security
from portal.views import (
    OriginalUrls,
    Refusal,
    ask,
    cfg,
    device_ip,
    logged_in,
    plan_cards,
    portal_url,
    require_device,
    status_of,
    typo_message,
)

bp = Blueprint("captive", __name__)

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
MAX_CODE = 40


def _originals() -> OriginalUrls:
    store: OriginalUrls = current_app.extensions.setdefault("hotspot.originals", OriginalUrls())
    return store


def _ours(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    p = cfg().portal
    return name.lower() in {p.hostname, str(p.address), "localhost", "127.0.0.1"}


def _to_portal() -> Response:
    response = redirect(portal_url("/"), code=302)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.before_app_request
def captive_redirect() -> ResponseReturnValue | None:
    host = request.host or ""
    if _ours(host):
        return None
    ip = device_ip()
    probe = PROBES.get(request.path)
    if probe is not None:
        if not logged_in(ip):
            return _to_portal()
        status, body, mimetype = probe
        if status == 302:
            return redirect(portal_url("/status"), code=302)
        return Response(body, status=status, mimetype=mimetype)
    # Only a page the resident opened is kept (a browser asks for text/html), the latest one;
    # an app's background request or a favicon does not replace it.
    navigation = "text/html" in request.headers.get("Accept", "")
    if ip is not None and request.method == "GET" and navigation and security.valid_host(host):
        original = security.safe_original(request.url)
        if original is not None:
            _originals().remember(ip, original)
    return _to_portal()


@bp.after_app_request
def close_redirected_connections(response: Response) -> Response:
    """A connection that reached us for another host must not be reused after login.

    The firewall redirected it; a browser keeps it in its pool for that host and, once the
    phone is logged in, would send the page it first asked for down the same connection — to
    us again. Closing it makes the browser open a new one, which now goes out. A WSGI app may
    not send `Connection` itself (PEP 3333): without a Content-Length, waitress closes the
    connection after the response, so the length is left out on these small answers.
    """
    if not _ours(request.host or ""):
        response.headers.pop("Content-Length", None)
        response.automatically_set_content_length = False
    return response


def _code_param() -> str:
    code = request.args.get("code", "")
    if len(code) > MAX_CODE:
        raise Refusal(400, _("That code is far too long."), form="login")
    return code


@bp.get("/")
def welcome() -> ResponseReturnValue:
    ip = device_ip()
    return render_template(
        "welcome.html",
        status=status_of(ip),
        code=_code_param(),
        plans=plan_cards(),
        free=cfg().free,
    )


def _typed_code() -> str:
    code = request.form.get("code", "")
    if len(code) > MAX_CODE:
        raise Refusal(400, _("That code is far too long."), form="login")
    return code


def _check_typo(ip: object, code: str, form: str) -> None:
    """A typo is caught here, without the database, and still counted by the daemon."""
    checked = codes.check(code)
    if checked.ok:
        return
    try:
        ask("wrong_code", ip=str(ip))
    except Refusal as refusal:
        if refusal.status == 429:
            raise
    raise Refusal(400, typo_message(checked), form=form)


def _after_login() -> Response:
    ip = require_device()
    original = _originals().take(ip)
    target = security.safe_original(original) if original else None
    return redirect(target or url_for("captive.status"), code=303)


@bp.post("/login")
def login() -> ResponseReturnValue:
    ip = require_device()
    code = _typed_code()
    _check_typo(ip, code, "login")
    ask("login", form="login", ip=str(ip), code=code)
    return _after_login()


@bp.post("/free")
def free() -> ResponseReturnValue:
    ip = require_device()
    if not cfg().free.enabled:
        raise Refusal(403, _("Free internet is not offered here."))
    ask("login", form="free", ip=str(ip), free=True)
    return _after_login()


@bp.get("/status")
def status() -> ResponseReturnValue:
    code = _code_param()
    st = status_of(device_ip())
    if st is None:
        return redirect(url_for("captive.welcome"), code=303)
    return render_template("status.html", status=st, code=code)


@bp.post("/topup")
def topup() -> ResponseReturnValue:
    ip = require_device()
    code = _typed_code()
    st = status_of(ip)
    if st is None:
        raise Refusal(409, _("This phone is not logged in any more."))
    _check_typo(ip, code, "topup")
    if st.session.kind.value == "free":
        ask("login", form="login", ip=str(ip), code=code)  # a card replaces the free allowance
    else:
        ask("topup", form="topup", ip=str(ip), code=code)
    return redirect(url_for("captive.status", added=1), code=303)


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    ip = require_device()
    try:
        ask("logout", ip=str(ip))
    except Refusal as refusal:
        if refusal.status != 403:  # not logged in: nothing to do
            raise
    return redirect(url_for("captive.welcome", out=1), code=303)


@bp.post("/bahasa")
def language() -> ResponseReturnValue:
    lang = request.form.get("lang", "")
    if lang not in i18n.LANGUAGES:
        raise Refusal(400, _("That request was not understood."))
    response = redirect(security.local_path(request.form.get("next")), code=303)
    response.set_cookie(i18n.COOKIE, lang, max_age=365 * 86400, httponly=True, samesite="Lax")
    return response


@bp.app_errorhandler(Refusal)
def refused(refusal: Refusal) -> ResponseReturnValue:
    code = ""
    if refusal.form in ("login", "topup"):
        raw = request.form.get("code", "") or request.args.get("code", "")
        code = raw if len(raw) <= MAX_CODE else ""
    response = make_response(
        render_template("error.html", message=refusal.message, form=refusal.form, code=code),
        refusal.status,
    )
    if refusal.retry_after:
        response.headers["Retry-After"] = str(refusal.retry_after)
    return response


@bp.app_errorhandler(HTTPException)
def http_error(exc: HTTPException) -> ResponseReturnValue:
    status = exc.code or 400
    if exc.description == "csrf":
        message = _("This form has expired. Please open the page again and retry.")
    elif status == 404:
        message = _("This page does not exist.")
    elif status == 405:
        message = _("That request was not understood.")
    elif status == 413:
        message = _("That was far too much to send.")
    else:
        message = _("That request was not understood.")
    response = make_response(
        render_template("error.html", message=message, form=None, code=""), status
    )
    if status == 405 and exc.get_response().headers.get("Allow"):
        response.headers["Allow"] = exc.get_response().headers["Allow"]
    return response
