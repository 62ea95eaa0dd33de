"""Migrations: bring a database to the schema this code expects, and check that it is there.

The check runs at every daemon start, before the kernel is rebuilt, so it avoids importing
Alembic (a quarter of a second on a small router): it reads the revision ids straight from
the migration files and the database's `alembic_version` table.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

from hotspotd.errors import DatabaseNotReady

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATIONS = Path(__file__).with_name("migrations")
_REVISION = re.compile(r'^revision\s*=\s*["\']([^"\']+)["\']', re.M)
_DOWN = re.compile(r'^down_revision\s*=\s*(?:["\']([^"\']+)["\']|None)', re.M)


def _alembic_config() -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head() -> str | None:
    """The newest revision, as Alembic reckons it."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


@cache
def head_from_files() -> str | None:
    """The newest revision, read from the migration files without Alembic."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        source = path.read_text()
        rev, down = _REVISION.search(source), _DOWN.search(source)
        if rev:
            revisions.add(rev.group(1))
        if down and down.group(1):
            parents.add(down.group(1))
    heads = revisions - parents
    if len(heads) != 1:
        raise DatabaseNotReady(f"the migrations have {len(heads)} heads; expected one")
    return heads.pop()


def current(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine, revision: str = "head") -> None:
    from alembic import command

    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def require_current(engine: Engine) -> None:
    """Refuse to work on a database that is not migrated to this code's schema."""
    have, want = current(engine), head_from_files()
    if have == want:
        return
    if have is None:
        raise DatabaseNotReady("the database has no schema yet: run `hotspotctl db upgrade`")
    raise DatabaseNotReady(
        f"the database schema is at {have}, this code needs {want}: run `hotspotctl db upgrade`"
    )
