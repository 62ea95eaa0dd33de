"""Shared fixtures: a fresh migrated database per test, and the CLI with its own config file."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from hotspotd import schema
from hotspotd.core import db as dbmod

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
IN_CI = os.environ.get("CI", "").lower() == "true"


def require(ok: bool, why: str) -> None:
    """Skip a test whose requirement (root, a tool) is missing; in CI, fail it instead."""
    if ok:
        return
    if IN_CI:
        pytest.fail(f"requirement missing in CI: {why}")
    pytest.skip(why)


def require_root_and(*tools: str) -> None:
    require(os.geteuid() == 0, "needs root")
    for tool in tools:
        require(shutil.which(tool) is not None, f"needs the {tool} command")


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state' / 'hotspot.db'}"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = dbmod.make_engine(db_url, create_dir=True)
    schema.upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    """A session in a transaction that the test may commit; the file is thrown away after."""
    with dbmod.make_sessionmaker(engine)() as session:
        yield session


@pytest.fixture
def config_file(tmp_path: Path, db_url: str) -> Path:
    path = tmp_path / "hotspot.toml"
    path.write_text(
        f'[village]\nname = "Desa Uji"\n\n[portal]\nruntime_dir = "{tmp_path / "portal-run"}"\n'
        f'\n[database]\nurl = "{db_url}"\n'
    )
    return path


class Ctl:
    """Runs `hotspotctl --config FILE ...` in-process, the way an operator would, on the
    test's clock (by default the fixed NOW, like the daemon's)."""

    def __init__(self, config_file: Path, clock: object | None = None) -> None:
        from tests.fakes import FakeClock

        self.config_file = config_file
        self.clock = clock or FakeClock(NOW)
        self.runner = CliRunner()

    def __call__(self, *args: str):  # type: ignore[no-untyped-def]
        from hotspotd.cli import cli

        return self.runner.invoke(cli, ["--config", str(self.config_file), *args], obj=self.clock)


@pytest.fixture
def ctl(config_file: Path) -> Ctl:
    return Ctl(config_file)
