"""`hotspotctl db`: the database schema."""

from __future__ import annotations

import sys

import click

from hotspotd import schema
from hotspotd.cli.common import (
    Env,
    Group,
    pass_env,
)


@click.group(cls=Group)
def db_group() -> None:
    """Database schema."""


@db_group.command("upgrade")
@pass_env
def db_upgrade(env: Env) -> None:
    """Create the database or bring it to this version's schema."""
    engine = env.engine(create_dir=True)
    before = schema.current(engine)
    schema.upgrade(engine)
    after = schema.current(engine)
    with engine.connect() as conn:
        mode = (
            conn.exec_driver_sql("PRAGMA journal_mode").scalar() if engine.name == "sqlite" else ""
        )
    said = "already at" if before == after else f"upgraded from {before or 'empty'} to"
    extra = f", journal {mode}" if mode else ""
    click.echo(f"database {said} revision {after} ({engine.url.render_as_string()}{extra})")


@db_group.command("status")
@pass_env
def db_status(env: Env) -> None:
    """Show the schema revision of the database and the one this code needs."""
    have, want = schema.current(env.engine()), schema.head()
    click.echo(f"database revision {have or 'none'}; this code needs {want}")
    if have != want:
        sys.exit(1)
