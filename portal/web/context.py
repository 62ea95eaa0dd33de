"""What every request of every surface reads: the config, its database session, the clock.

The app's factory puts them in `app.config` and `app.extensions`; a request's database session
is opened on first use and closed when the request ends. Templates see the config as
`config.HOTSPOT`.
"""

from __future__ import annotations

from datetime import datetime

from flask import Flask, current_app, g
from sqlalchemy.orm import Session as DB

from hotspotd.clock import Clock
from hotspotd.config import Config


def cfg() -> Config:
    config: Config = current_app.config["HOTSPOT"]
    return config


def db() -> DB:
    if "db" not in g:
        g.db = current_app.extensions["hotspot.sessionmaker"]()
    session: DB = g.db
    return session


def clock() -> Clock:
    the_clock: Clock = current_app.extensions["hotspot.clock"]
    return the_clock


def now() -> datetime:
    return clock().now()


def close_session(_exc: BaseException | None) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()


def init_app(app: Flask) -> None:
    app.teardown_appcontext(close_session)
