"""The operator's UI app: `create_operator_app()`, served by `hotspot-operator` over HTTPS.

On the shared web layer (portal.web: CSRF, headers, Babel, the request's database session),
with its own templates and error pages, and none of the residents' edge. Unlike the residents'
portal it writes the database (accounts' sessions, the audit log); kernel changes still go
through hotspotd's operator operations, with the signed-in account as the actor.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_babel import format_decimal
from flask_babel import gettext as _

from hotspotd import config as config_mod
from hotspotd.clock import Clock, SystemClock
from hotspotd.core import db
from hotspotd.core.models import Role
from portal import web
from portal.app import _secret_key
from portal.operator import (
    audit,
    auth,
    backups,
    devices,
    online,
    plans,
    preferences,
    printing,
    views,
    vouchers,
)
from portal.web import daemon_client, settings


def create_operator_app(
    cfg: config_mod.Config | None = None,
    test_config: dict[str, Any] | None = None,
    clock: Clock | None = None,
) -> Flask:
    app = Flask(__name__, static_folder="../static", template_folder="templates")
    cfg = cfg or config_mod.load()
    clock = clock or SystemClock(published=cfg.daemon.clock_file)
    app.config.from_mapping(
        HOTSPOT=cfg,
        SECRET_KEY=_secret_key(cfg.operator.secret_key_file),
        MAX_CONTENT_LENGTH=64 * 1024,
        MAX_FORM_MEMORY_SIZE=32 * 1024,
        MAX_FORM_PARTS=50,
        BABEL_DEFAULT_LOCALE="id",
        BABEL_DEFAULT_TIMEZONE=cfg.village.timezone,
        BABEL_TRANSLATION_DIRECTORIES=str(printing.TRANSLATIONS),  # the portal's, shared
        SESSION_COOKIE_SECURE=True,
        PREFERRED_URL_SCHEME="https",
    )
    if test_config:
        app.config.update(test_config)
    engine = db.make_engine(cfg.database.url)
    app.extensions["hotspot.engine"] = engine
    app.extensions["hotspot.sessionmaker"] = db.make_sessionmaker(engine)
    app.extensions["hotspot.clock"] = clock
    daemon_client.init_app(app, cfg)
    web.init_app(app)
    settings.init_app(app, cfg)
    app.register_blueprint(auth.bp)
    app.register_blueprint(views.bp)
    app.register_blueprint(vouchers.bp)
    app.register_blueprint(online.bp)
    app.register_blueprint(audit.bp)
    app.register_blueprint(devices.bp)
    app.register_blueprint(plans.bp)
    app.register_blueprint(preferences.bp)
    app.register_blueprint(backups.bp)
    app.jinja_env.globals["rate"] = _rate
    printing.init_app(app)
    app.context_processor(_page_context)
    return app


def _page_context() -> dict[str, Any]:
    return {"signed_in": auth.current(), "role_name": _role_name}


def _rate(bps: int) -> str:
    """A speed in bit/s as people read it: "1,2 Mbit/s"."""
    for unit, factor in (("Mbit/s", 10**6), ("kbit/s", 10**3)):
        if bps >= factor:
            return f"{format_decimal(bps / factor, format='#,##0.#')} {unit}"
    return f"{max(0, bps)} bit/s"


def _role_name(role: Role) -> str:
    return {
        Role.ADMIN: _("admin"),
        Role.OPERATOR: _("operator"),
        Role.KOMINFO: _("kominfo"),
    }[role]
