"""The residents' pages: welcome, voucher and free login, status, top-up, log out, language.

What a phone that is not logged in gets for a URL of another host is answered before Flask,
by portal.residents.intercept.
"""

from __future__ import annotations

import logging

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
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from hotspotd.core import codes, content
from portal.residents.originals import OriginalUrls
from portal.residents.views import (
    ask,
    device_ip,
    kept_page,
    plan_cards,
    require_device,
    status_of,
    typo_message,
)
from portal.web import i18n, security, settings
from portal.web.context import db
from portal.web.errors import Refusal, unavailable

bp = Blueprint("captive", __name__, template_folder="templates")
log = logging.getLogger("hotspot.portal")

MAX_CODE = 40


def _code_param() -> str:
    code = request.args.get("code", "")
    if len(code) > MAX_CODE:
        raise Refusal(400, _("That code is far too long."), form="login")
    return code


@bp.get("/")
def welcome() -> ResponseReturnValue:
    code = _code_param()
    st = status_of(device_ip())

    def context() -> dict[str, object]:
        return dict(status=st, code=code, plans=plan_cards(), free=settings.current().free,
                    tiles=content.counts(db()))  # fmt: skip

    if st is None and not request.args:  # the page every phone gets first: kept
        return kept_page("welcome", "welcome.html", context)
    return render_template("welcome.html", **context())


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
    originals: OriginalUrls = current_app.extensions["hotspot.originals"]
    original = originals.take(ip)
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
    if not settings.current().free.enabled:
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
    elif ask("topup", form="topup", ip=str(ip), code=code).get("switched"):
        return redirect(url_for("captive.status", switched=1), code=303)
    return redirect(url_for("captive.status", added=1), code=303)


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    ip = require_device()
    try:
        ask("logout", ip=str(ip))
    except Refusal as refusal:
        if refusal.reason != "not_logged_in":  # not logged in: nothing to do
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


@bp.app_errorhandler(SQLAlchemyError)
def database_error(exc: SQLAlchemyError) -> ResponseReturnValue:
    """The database is missing, not migrated or locked too long: a page that says try again."""
    log.error("database error: %s", str(exc).splitlines()[0])
    response = make_response(
        render_template("error.html", message=unavailable(), form=None, code=""), 503
    )
    response.headers["Retry-After"] = "30"
    return response


@bp.app_errorhandler(HTTPException)
def http_error(exc: HTTPException) -> ResponseReturnValue:
    status = exc.code or 400
    if status >= 500:
        message = unavailable()
    elif exc.description == "csrf":
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
