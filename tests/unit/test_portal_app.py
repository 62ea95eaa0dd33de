"""The portal's app factory: built from a config, nothing at import time."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import OperationalError

from hotspotd import config, schema
from hotspotd.core import db as dbmod
from hotspotd.core import plans
from hotspotd.core.models import Plan
from portal.app import create_app
from tests.conftest import NOW


def test_healthz_reports_a_migrated_database(engine: Engine, config_file: Path) -> None:
    app = create_app(config.load(config_file), {"TESTING": True})
    answer = app.test_client().get("/healthz")
    assert answer.status_code == 200
    assert answer.get_json() == {"ok": True, "schema": schema.head()}


def unmigrated(tmp_path: Path) -> config.Config:
    path = tmp_path / "c.toml"
    path.write_text(
        f'[portal]\nruntime_dir = "{tmp_path / "run"}"\n'
        f'[database]\nurl = "sqlite:///{tmp_path / "empty.db"}"\n'
    )
    return config.load(path)


def test_healthz_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    answer = create_app(unmigrated(tmp_path)).test_client().get("/healthz")
    assert answer.status_code == 503
    assert "hotspotctl db upgrade" in answer.get_json()["reason"]


def test_no_database_yet_is_a_page_that_says_try_again(tmp_path: Path) -> None:
    client = create_app(unmigrated(tmp_path)).test_client()
    phone = {"REMOTE_ADDR": "10.66.1.5"}
    for path in ("/", "/pasar", "/belajar", "/status", "/api/captive"):
        answer = client.get(path, base_url="http://portal.lan:8080", environ_base=phone)
        assert answer.status_code == 503, path
        assert answer.headers["Retry-After"] == "30"
        assert "coba lagi" in answer.get_data(as_text=True).lower(), path
        assert "Traceback" not in answer.get_data(as_text=True)
    probe = client.get("/generate_204", base_url="http://connectivitycheck.gstatic.com",
                       environ_base=phone)  # fmt: skip
    assert probe.status_code == 302  # still sent to the portal, which says why


def test_the_residents_portal_cannot_write_the_database(engine: Engine, config_file: Path) -> None:
    """A compromised portal changes nothing but through the daemon's few named operations."""
    app = create_app(config.load(config_file), {"TESTING": True})
    with app.extensions["hotspot.sessionmaker"]() as tx:
        assert tx.scalar(select(func.count()).select_from(Plan)) == 0  # it reads
        tx.add(Plan(name="Gratis selamanya", price_rp=0, created_at=NOW))
        with pytest.raises(OperationalError, match="readonly"):
            tx.flush()
        tx.rollback()
        with pytest.raises(OperationalError, match="readonly"):
            tx.execute(text("UPDATE device SET blocked = 0"))
        tx.rollback()
        with pytest.raises(OperationalError, match="readonly"):  # nor can it turn that off
            tx.execute(text("PRAGMA query_only = OFF"))
            tx.execute(text("DELETE FROM plan"))
    with dbmod.make_sessionmaker(engine).begin() as tx:  # the daemon's engine still writes
        plans.add(tx, "Harian", plans.PlanTerms(price_rp=5000, validity_s=86400), NOW)
    with app.extensions["hotspot.sessionmaker"]() as tx:
        assert tx.scalar(select(func.count()).select_from(Plan)) == 1  # and the portal sees it
