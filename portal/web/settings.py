"""The settings in force for this request: the names on the pages, the welcome message and the
free allowance, as an admin last set them in the operator's UI (`hotspotd.core.settings`), over
the config file's defaults. A change shows on the next page, with no restart.

Templates see them as `village` (`village.village_name`, `village.village_operator`,
`village.welcome_message`, `village.free`). The residents' portal, which every phone asks at
once after a power cut, reads the rows again only when the database has changed (the online
set's data_version stamp); the operator's UI reads them per request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from hotspotd.config import Config
from hotspotd.core import settings
from hotspotd.core.settings import Settings
from portal.web import context

log = logging.getLogger("hotspot.portal")


class Watched:
    """The settings, read again only when `stamp()` moves (None: it cannot tell, so read)."""

    def __init__(self, live: settings.Live, engine: Engine, stamp: Callable[[], object]) -> None:
        self._live, self._engine, self._stamp = live, engine, stamp
        self._seen: object = None
        self._settings = live.defaults

    def get(self) -> Settings:
        stamp = self._stamp()
        if stamp is None or stamp != self._seen:
            with self._engine.connect() as conn:
                self._settings = self._live.from_rows(settings.rows(conn))
            self._seen = stamp
        return self._settings


def init_app(app: Flask, cfg: Config, stamp: Callable[[], object] | None = None) -> None:
    """`stamp`: what tells the database changed (the residents' online set); without it, the
    rows are read on each request that needs them."""
    live = settings.Live(Settings.defaults(cfg.village, cfg.free))
    app.extensions["hotspot.settings"] = live
    if stamp is not None:
        app.extensions["hotspot.settings.watched"] = Watched(
            live, app.extensions["hotspot.engine"], stamp
        )
    app.context_processor(_template_context)


def current() -> Settings:
    """The settings in force; the config's defaults if the database cannot be read (an error
    page still shows the village's name)."""
    if "settings" not in g:
        live: settings.Live = current_app.extensions["hotspot.settings"]
        watched: Watched | None = current_app.extensions.get("hotspot.settings.watched")
        try:
            g.settings = watched.get() if watched is not None else live.get(context.db())
        except SQLAlchemyError:
            log.exception("the settings could not be read; the config's defaults apply")
            g.settings = live.defaults
    found: Settings = g.settings
    return found


def _template_context() -> dict[str, Any]:
    return {"village": current()}


def defaults() -> Settings:
    """What the config file says, before anything an admin set."""
    live: settings.Live = current_app.extensions["hotspot.settings"]
    return live.defaults
