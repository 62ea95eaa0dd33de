"""The operator's pages: the dashboard (admin, operator), the reports' place (kominfo), the
language, and an error page for every refusal."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from flask import Blueprint, make_response, redirect, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from hotspotd.backup.rotation import NIGHTLY_DIR
from hotspotd.clock import read_published
from hotspotd.control.client import answers
from hotspotd.core import db as dbmod
from hotspotd.core import overview
from hotspotd.core.models import Role
from portal.operator.auth import current, requires
from portal.web import context, i18n, security

log = logging.getLogger("hotspot.operator")
bp = Blueprint("operator", __name__)


@dataclass(frozen=True)
class Health:
    daemon_answers: bool
    clock_synced: bool | None  # None: hotspotd has published no clock
    disk_free: int | None  # bytes free where the database and backups are
    database_size: int | None
    last_backup: datetime | None


@bp.get("/")
@requires(Role.ADMIN, Role.OPERATOR, Role.KOMINFO)
def home() -> ResponseReturnValue:
    account = current()
    assert account is not None
    if account.role is Role.KOMINFO:
        return render_template("reports_soon.html")
    cfg = context.cfg()
    today = overview.today(context.db(), context.now(), cfg.village.tz)
    return render_template("dashboard.html", today=today, health=_health())


def _health() -> Health:
    cfg = context.cfg()
    published = read_published(cfg.daemon.clock_file)
    state = cfg.daemon.state_dir
    free = None
    try:
        free = shutil.disk_usage(state).free
    except OSError:
        pass
    size = None
    path = dbmod.sqlite_path(cfg.database.url)
    if path is not None:
        try:
            size = path.stat().st_size
        except OSError:
            pass
    return Health(
        daemon_answers=answers(cfg.daemon.control_socket, timeout=1),
        clock_synced=published.synced if published else None,
        disk_free=free,
        database_size=size,
        last_backup=_last_backup(state / NIGHTLY_DIR),
    )


def _last_backup(folder: Path) -> datetime | None:
    try:
        newest = max((p.stat().st_mtime for p in folder.glob("hotspot-*.tar.gz")), default=None)
    except OSError:
        return None
    return datetime.fromtimestamp(newest, UTC) if newest is not None else None


@bp.post("/bahasa")
def language() -> ResponseReturnValue:
    lang = request.form.get("lang", "")
    if lang not in i18n.LANGUAGES:
        return _error(400, _("That request was not understood."))
    response = redirect(security.local_path(request.form.get("next")), code=303)
    response.set_cookie(i18n.COOKIE, lang, max_age=365 * 86400, httponly=True, secure=True,
                        samesite="Strict")  # fmt: skip
    return response


def _error(status: int, message: str) -> ResponseReturnValue:
    return make_response(render_template("op_error.html", message=message), status)


@bp.app_errorhandler(SQLAlchemyError)
def database_error(exc: SQLAlchemyError) -> ResponseReturnValue:
    log.error("database error: %s", str(exc).splitlines()[0])
    return _error(503, _("The database cannot be read right now. Try again in a minute."))


@bp.app_errorhandler(HTTPException)
def http_error(exc: HTTPException) -> ResponseReturnValue:
    status = exc.code or 400
    if status == 403:
        message = _("Your account may not do this. Ask the village's admin.")
    elif status == 404:
        message = _("This page does not exist.")
    elif exc.description == "csrf":
        message = _("This form has expired. Please open the page again and retry.")
    elif status >= 500:
        message = _("Something went wrong on the router. Try again in a minute.")
    else:
        message = _("That request was not understood.")
    return _error(status, message)
