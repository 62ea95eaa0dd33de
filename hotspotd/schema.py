"""Migrations: bring a database to the schema this code expects, and check that it is there."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from hotspotd.errors import DatabaseNotReady

MIGRATIONS = Path(__file__).with_name("migrations")


def _alembic_config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head() -> str | None:
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def current(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def require_current(engine: Engine) -> None:
    """Refuse to work on a database that is not migrated to this code's schema."""
    have, want = current(engine), head()
    if have == want:
        return
    if have is None:
        raise DatabaseNotReady("the database has no schema yet: run `hotspotctl db upgrade`")
    raise DatabaseNotReady(
        f"the database schema is at {have}, this code needs {want}: run `hotspotctl db upgrade`"
    )
