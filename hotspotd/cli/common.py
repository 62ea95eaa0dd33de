"""What every hotspotctl command shares: the environment (config, clock, database), the option
types in human units, the error handling that makes one line of any expected failure, and the
table and JSON output.
"""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import click
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from hotspotd import config as config_mod
from hotspotd import schema
from hotspotd.clock import Clock, SystemClock
from hotspotd.control.client import OperatorClient
from hotspotd.control.wire import ControlError
from hotspotd.core import db, units
from hotspotd.errors import DatabaseNotReady, HotspotError

NONE = object()  # an option given as "none": clear the limit


class UnitType(click.ParamType):
    """A human-unit option; "none" stands for no limit."""

    def __init__(self, name: str, parse: Callable[[str], int]) -> None:
        self.name = name
        self._parse = parse

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is NONE or isinstance(value, int):
            return value
        if units.is_none(str(value)):
            return NONE
        try:
            return self._parse(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


DURATION = UnitType("duration", units.parse_duration)
SIZE = UnitType("size", units.parse_size)
RATE = UnitType("rate", units.parse_rate)


COUNT = UnitType("count", units.parse_count)
PRICE = UnitType("price", units.parse_price)


@dataclass
class Env:
    """What a command works with: config, clock and database, each made on first use."""

    config_path: str | None
    _clock: Clock | None = None  # tests hand in the daemon's fake clock
    _config: config_mod.Config | None = None
    _engine: Engine | None = None
    json_output: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> config_mod.Config:
        if self._config is None:
            self._config = config_mod.load(self.config_path)
        return self._config

    @property
    def clock(self) -> Clock:
        """The system clock with the daemon's correction: the time the daemon tells."""
        if self._clock is None:
            self._clock = SystemClock(published=self.config.daemon.clock_file)
        return self._clock

    def now(self) -> datetime:
        return self.clock.now()

    def engine(self, *, create_dir: bool = False) -> Engine:
        if self._engine is None:
            self._engine = db.make_engine(self.config.database.url, create_dir=create_dir)
        return self._engine

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        path = db.sqlite_path(self.config.database.url)
        if path is not None and not path.exists():  # don't leave an empty file behind
            raise DatabaseNotReady(f"no database at {path}: run `hotspotctl db upgrade`")
        engine = self.engine()
        schema.require_current(engine)
        with db.make_sessionmaker(engine).begin() as session:
            yield session


pass_env = click.make_pass_decorator(Env)


def login_name() -> str:
    """Who runs the command, for the audit log: the user behind sudo, not root."""
    return os.environ.get("SUDO_USER") or getpass.getuser()


def actor(by: str | None = None) -> str:
    """Who asks, as the audit log keeps it: `cli:<unix user>` (or `cli:<--by>`)."""
    return f"cli:{by or login_name()}"


def operator(env: Env, by: str | None = None) -> OperatorClient:
    """The running hotspotd, asked as this operator."""
    return OperatorClient(env.config.daemon.control_socket, actor(by))


def ask_daemon_or_none(env: Env, op: str, by: str | None = None, **params: Any) -> Any:
    """Ask the running hotspotd to make a change (it is in the kernel when this returns).

    None when no hotspotd runs: the caller then writes the database itself, and hotspotd puts
    it in the kernel when it starts, from the database, before it serves anyone.
    """
    try:
        return operator(env, by).call(op, **params)
    except ControlError as exc:
        if exc.code != "unavailable":
            raise
        click.echo(f"note: {exc.message}; changed in the database, hotspotd applies it when it "
                   "starts", err=True)  # fmt: skip
        return None


def _friendly_db_error(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig) if orig is not None else str(exc).splitlines()[0]
    if isinstance(exc, OperationalError) and "unable to open database file" in text:
        return "cannot open the database file (does its folder exist, may you write there?)"
    return f"database error: {text}"


class Group(click.Group):
    """Turns every expected failure into one line on stderr and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HotspotError as exc:
            raise click.ClickException(str(exc)) from None
        except SQLAlchemyError as exc:
            raise click.ClickException(_friendly_db_error(exc)) from None
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            raise click.ClickException(f"{where}{exc.strerror or exc}") from None


# ---------------------------------------------------------------- output


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def dump(obj: object) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, indent=2))
