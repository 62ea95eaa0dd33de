"""The residents' portal, the Flask app `hotspot-portal` serves: built by `create_app()`.

The shared web layer (portal.web), the residents' blueprints (portal.residents) and, in front of
them, the residents' edge. Nothing happens at import time. The app reads domain data through
`hotspotd.core` with one database session per request, and asks the root daemon for kernel
changes (login, logout, top-up) over its control socket, never itself. Another surface with its
own listener (the operator's UI) is its own app on portal.web, without the residents' edge.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask

from hotspotd import config as config_mod
from hotspotd.clock import Clock, SystemClock
from hotspotd.core import db
from portal import residents, web
from portal.residents.online import OnlineAddresses
from portal.residents.originals import OriginalUrls
from portal.web import daemon_client, settings


def _secret_key(path: Path | None) -> bytes:
    """The cookie-signing key: from the configured file (made on first start), else random."""
    if path is None:
        return secrets.token_bytes(32)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        key = secrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        return key


def create_app(
    cfg: config_mod.Config | None = None,
    test_config: dict[str, Any] | None = None,
    clock: Clock | None = None,
) -> Flask:
    """The portal. `clock` decides every time it tells; by default the system clock with the
    daemon's published correction, so a router whose clock is not yet set agrees with it."""
    app = Flask(__name__, template_folder=None)  # each surface has its own templates
    cfg = cfg or config_mod.load()
    clock = clock or SystemClock(published=cfg.daemon.clock_file)
    app.config.from_mapping(
        HOTSPOT=cfg,
        SECRET_KEY=_secret_key(cfg.portal.secret_key_file),
        MAX_CONTENT_LENGTH=16 * 1024,
        MAX_FORM_MEMORY_SIZE=8 * 1024,
        MAX_FORM_PARTS=20,
        BABEL_DEFAULT_LOCALE="id",
        BABEL_DEFAULT_TIMEZONE=cfg.village.timezone,
    )
    if test_config:
        app.config.update(test_config)
    # The residents' portal writes nothing: its changes are the daemon's named operations.
    engine = db.make_engine(cfg.database.url, read_only=True)
    app.extensions["hotspot.engine"] = engine
    app.extensions["hotspot.sessionmaker"] = db.make_sessionmaker(engine)
    daemon_client.init_app(app, cfg)
    app.extensions["hotspot.clock"] = clock
    online = OnlineAddresses(engine, clock=clock.monotonic)
    originals = OriginalUrls(cfg.portal.runtime_dir, clock=clock.monotonic)
    originals.prepare()
    app.extensions["hotspot.online"] = online
    app.extensions["hotspot.originals"] = originals
    settings.init_app(app, cfg, stamp=online.version)

    web.init_app(app)
    residents.init_app(app, cfg, online=online, originals=originals)
    return app
