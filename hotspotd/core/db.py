"""Engine and sessions; SQLite tuned for a router that loses power.

SQLite runs in WAL mode with `synchronous=FULL` (a committed login or sale survives a power
cut), foreign keys on and a busy timeout, so the daemon, the portal and the CLI can share one
file. Other databases (PostgreSQL) get a plain engine.

A reader that must never write (the residents' portal, which every phone reaches) gets a
read-only engine: SQLite opened with `mode=ro` and `query_only`, PostgreSQL sessions that are
read-only transactions. Its few changes go through the daemon's named operations.
"""

from __future__ import annotations

import sqlite3
import urllib.parse
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import QueuePool

BUSY_TIMEOUT_MS = 5000


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = FULL")
    cursor.close()


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL; None for other databases and in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _sqlite_read_only(dbapi_connection: Any, _record: Any) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.execute("PRAGMA query_only = ON")


def _postgres_read_only(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    cursor.close()


def make_engine(url: str, *, create_dir: bool = False, read_only: bool = False) -> Engine:
    """An engine for `url`. With `create_dir`, the folder of a SQLite file is made if missing;
    with `read_only`, no connection it makes can write."""
    if make_url(url).get_backend_name() == "sqlite":
        path = sqlite_path(url)
        if create_dir and path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        timeout = BUSY_TIMEOUT_MS / 1000
        if read_only and path is not None:
            uri = f"file:{urllib.parse.quote(str(path.absolute()))}?mode=ro"
            engine = create_engine(
                "sqlite://",
                creator=lambda: sqlite3.connect(uri, uri=True, timeout=timeout,
                                                check_same_thread=False),
                poolclass=QueuePool,  # a file, not the in-memory database the URL suggests
            )  # fmt: skip
        else:
            engine = create_engine(url, connect_args={"timeout": timeout})
        event.listen(engine, "connect", _sqlite_pragmas)
        if read_only:
            event.listen(engine, "connect", _sqlite_read_only)
        return engine
    engine = create_engine(url, pool_pre_ping=True)
    if read_only:
        event.listen(engine, "connect", _postgres_read_only)
    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Any]:
    return sessionmaker(engine, expire_on_commit=False)
