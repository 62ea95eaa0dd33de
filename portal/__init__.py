"""The captive portal and the operator's web UI: a Flask app built by `create_app()`.

Nothing happens at import time. The app reads domain data through `hotspotd.core` with one
database session per request, and (from the daemon issue on) asks the root daemon for kernel
changes over its control socket, never itself.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, g

from hotspotd import config as config_mod
from hotspotd.core import db


def create_app(
    cfg: config_mod.Config | None = None, test_config: dict[str, Any] | None = None
) -> Flask:
    app = Flask(__name__)
    cfg = cfg or config_mod.load()
    app.config.from_mapping(HOTSPOT=cfg)
    if test_config:
        app.config.update(test_config)
    engine = db.make_engine(cfg.database.url)
    app.extensions["hotspot.engine"] = engine
    app.extensions["hotspot.sessionmaker"] = db.make_sessionmaker(engine)

    @app.teardown_appcontext
    def close_session(_exc: BaseException | None) -> None:
        session = g.pop("db", None)
        if session is not None:
            session.close()

    from portal import health

    app.register_blueprint(health.bp)
    return app
