"""Signing in to the operator's UI: a server-side session per browser, checked on every request.

The cookie holds only a random token (the database keeps its hash: `hotspotd.core.operators`);
it is HttpOnly, Secure and SameSite=Strict, new at every sign-in, and ends on sign-out, after
the idle timeout, or when the account's password changes or the account is disabled. Every
view says which roles may use it (`requires`), checked here on the server, never only by
hiding a button.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, Response, abort, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from hotspotd.core import operators
from hotspotd.core.models import Operator, Role
from portal.web import context
from portal.web.security import local_path

COOKIE = "hs_op"
MAX_FIELD = 200

bp = Blueprint("auth", __name__)
F = TypeVar("F", bound=Callable[..., ResponseReturnValue])


def current() -> Operator | None:
    """The signed-in account of this request, or None."""
    if "operator" not in g:
        token = request.cookies.get(COOKIE, "")
        found = None
        if token and len(token) <= MAX_FIELD:
            db = context.db()
            found = operators.session_of(
                db, token, now=context.now(), idle_s=context.cfg().operator.idle_s
            )
            db.commit()  # the session's last use, for the idle timeout
        g.operator = found
    account: Operator | None = g.operator
    return account


def actor() -> str:
    """Who acts, for hotspotd's operator operations and the audit log."""
    account = current()
    assert account is not None
    return f"ui:{account.username}"


def requires(*roles: Role) -> Callable[[F], F]:
    """Only these roles may use the view; without a sign-in, the sign-in page first."""

    def wrap(view: F) -> F:
        @functools.wraps(view)
        def checked(*args: Any, **kwargs: Any) -> ResponseReturnValue:
            account = current()
            if account is None:
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            if account.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return checked  # type: ignore[return-value]

    return wrap


@bp.get("/masuk")
def login() -> ResponseReturnValue:
    if current() is not None:
        return redirect(url_for("operator.home"))
    return render_template("login.html", next=_next(), username="")


@bp.post("/masuk")
def login_post() -> ResponseReturnValue:
    username = request.form.get("username", "")[:MAX_FIELD].strip()
    password = request.form.get("password", "")[:MAX_FIELD]
    db = context.db()
    try:
        account, token = operators.log_in(
            db, username, password, address=request.remote_addr or "", now=context.now()
        )
    except operators.LoginRefused as refused:
        db.commit()  # the failure counts (and is audited) even though the sign-in is refused
        if refused.reason == "slow_down":
            message = _(
                "Too many tries. Wait %(seconds)s seconds, then try again.",
                seconds=getattr(refused, "retry_after", 60),
            )
            status = 429
        else:
            message = _("That name and password do not match an account.")
            status = 401
        page = render_template("login.html", next=_next(), username=username, error=message)
        return page, status
    db.commit()
    g.operator = account
    response = redirect(_next())
    response.set_cookie(COOKIE, token, httponly=True, secure=True, samesite="Strict", path="/")
    return response


@bp.post("/keluar")
def logout() -> ResponseReturnValue:
    token = request.cookies.get(COOKIE, "")
    if token and len(token) <= MAX_FIELD:
        db = context.db()
        operators.log_out(db, token, now=context.now())
        db.commit()
    response: Response = redirect(url_for("auth.login"))
    response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="Strict")
    return response


def _next() -> str:
    return local_path(request.values.get("next"), default="/")
