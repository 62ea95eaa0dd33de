"""The portal's app factory: built from a config, nothing at import time."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from hotspotd import config, schema
from portal import create_app


def test_healthz_reports_a_migrated_database(engine: Engine, config_file: Path) -> None:
    app = create_app(config.load(config_file), {"TESTING": True})
    answer = app.test_client().get("/healthz")
    assert answer.status_code == 200
    assert answer.get_json() == {"ok": True, "schema": schema.head()}


def test_healthz_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "empty.db"}"\n')
    answer = create_app(config.load(path)).test_client().get("/healthz")
    assert answer.status_code == 503
    assert "hotspotctl db upgrade" in answer.get_json()["reason"]
