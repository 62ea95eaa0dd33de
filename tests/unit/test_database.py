"""The database: migrated schema, SQLite settings for power cuts, UTC times, migrations match."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from hotspotd import schema
from hotspotd.core import db as dbmod
from hotspotd.core.models import AuditEvent, Base, Plan
from hotspotd.errors import DatabaseNotReady
from tests.conftest import NOW


def test_migrated_sqlite_file_is_in_wal_mode_with_foreign_keys(engine: Engine, db_url: str) -> None:
    path = Path(db_url.removeprefix("sqlite:///"))
    assert path.exists()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == dbmod.BUSY_TIMEOUT_MS
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    # WAL is a property of the file: a plain sqlite3 connection sees it too.
    import sqlite3

    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_schema_is_at_head_after_upgrade(engine: Engine) -> None:
    assert schema.current(engine) == schema.head() is not None
    schema.require_current(engine)
    schema.upgrade(engine)  # a second upgrade is harmless
    assert schema.current(engine) == schema.head()


def test_unmigrated_database_is_refused(tmp_path: Path) -> None:
    eng = dbmod.make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(DatabaseNotReady, match="hotspotctl db upgrade"):
        schema.require_current(eng)


def test_every_migration_goes_up_from_empty_and_from_the_first(tmp_path: Path) -> None:
    """An existing village database at the first revision upgrades with its data intact."""
    eng = dbmod.make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    schema.upgrade(eng, "0001")
    with eng.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO plan (name, price_rp, created_at) VALUES ('Lama', 3000, '2026-01-01')"
            )
        )
    schema.upgrade(eng)
    assert schema.current(eng) == schema.head()
    with dbmod.make_sessionmaker(eng)() as s:
        assert s.scalars(select(Plan.price_rp)).all() == [3000]


def test_models_and_migrations_agree(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_foreign_keys_are_enforced(db: Session) -> None:
    with pytest.raises(IntegrityError, match="FOREIGN KEY"):
        db.execute(
            text(
                "INSERT INTO voucher_batch"
                " (name, plan_id, count, code_kind, created_by, created_at)"
                " VALUES ('x', 999, 1, 'alnum', 't', '2026-01-01')"
            )
        )


def test_check_constraints_guard_plan_limits(db: Session) -> None:
    db.add(Plan(name="Bad", price_rp=-1, created_at=NOW))
    with pytest.raises(IntegrityError):
        db.flush()


def test_times_come_back_as_aware_utc(db: Session) -> None:
    wib = timezone(timedelta(hours=7))
    db.add(
        AuditEvent(at=datetime(2026, 11, 23, 10, 0, tzinfo=wib), actor="a", action="t", subject="s")
    )
    db.commit()
    db.expire_all()
    event = db.scalars(select(AuditEvent)).one()
    assert event.at == datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
    assert event.at.tzinfo is not None and event.at.utcoffset() == timedelta(0)


def test_naive_times_are_refused(db: Session) -> None:
    db.add(AuditEvent(at=datetime(2026, 11, 23, 10, 0), actor="a", action="t", subject="s"))
    with pytest.raises(StatementError, match="naive datetime"):
        db.flush()


def test_committed_work_survives_a_new_connection(engine: Engine, db_url: str) -> None:
    with dbmod.make_sessionmaker(engine).begin() as s:
        s.add(Plan(name="Harian", price_rp=5000, created_at=NOW))
    other = dbmod.make_engine(db_url)
    with dbmod.make_sessionmaker(other)() as s:
        assert s.scalars(select(Plan.name)).all() == ["Harian"]
    other.dispose()


def test_fast_head_agrees_with_alembic() -> None:
    assert schema.head_from_files() == schema.head()
