"""core.settings: the config's defaults under what an admin set, checked by the config's parsers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from hotspotd import config
from hotspotd.core import settings
from hotspotd.core.models import AuditEvent, Setting
from hotspotd.core.settings import Settings
from tests.conftest import NOW

DEFAULTS = Settings.defaults(config.VillageConfig(name="Desa Uji"), config.FreeAllowanceConfig())


def test_no_row_is_the_config_file(db: Session) -> None:
    now = settings.effective(db, DEFAULTS)
    assert now == DEFAULTS
    assert now.village_name == "Desa Uji" and now.free.time_s == 1800 and not now.free.enabled


def test_a_change_is_parsed_as_the_config_parses_it_and_audited(db: Session) -> None:
    after = settings.change(
        db,
        {"free.enabled": "true", "free.time": "1h30m", "free.data": "1.5GB", "free.down": "2M",
         "free.up": "none", "village.name": "  Desa   Sukamaju "},
        defaults=DEFAULTS, actor="ui:siti", now=NOW,
    )  # fmt: skip
    assert after.free.enabled and after.free.time_s == 5400
    assert after.free.data_bytes == 1_500_000_000 and after.free.down_bps == 2_000_000
    assert after.free.up_bps is None  # "none" is no limit, as in [free]
    assert after.village_name == "Desa Sukamaju"
    assert settings.rows(db) == (
        ("free.data", "1500MB"), ("free.down", "2M"), ("free.enabled", "true"),
        ("free.time", "1h30m"), ("free.up", "none"), ("village.name", "Desa Sukamaju"),
    )  # fmt: skip
    events = db.scalars(select(AuditEvent).order_by(AuditEvent.subject)).all()
    assert (events[0].actor, events[0].action, events[0].subject) == (
        "ui:siti", "setting.change", "free.data"
    )  # fmt: skip
    assert {e.detail for e in events if e.subject == "free.time"} == {"30m → 1h30m"}
    row = db.get(Setting, "free.time")
    assert row is not None and row.updated_by == "ui:siti" and row.updated_at == NOW


def test_one_bad_value_changes_nothing(db: Session) -> None:
    with pytest.raises(settings.InvalidSetting) as refused:
        settings.change(db, {"free.time": "2h", "free.down": "1"}, defaults=DEFAULTS,
                        actor="ui:siti", now=NOW)  # fmt: skip
    assert refused.value.key == "free.down" and refused.value.reason == "bad_rate"
    for bad in ({"village.name": " "}, {"village.message": "x" * 501},
                {"village.name": "Desa\x00"}, {"free.enabled": "maybe"}):  # fmt: skip
        with pytest.raises(settings.InvalidSetting):
            settings.change(db, bad, defaults=DEFAULTS, actor="ui:siti", now=NOW)
    with pytest.raises(settings.InvalidInput, match="no setting"):
        settings.change(db, {"daemon.state_dir": "/"}, defaults=DEFAULTS, actor="t", now=NOW)
    with pytest.raises(settings.InvalidInput, match="no setting"):
        settings.change(db, {"free.time": "1h", "bogus": None}, defaults=DEFAULTS, actor="t",
                        now=NOW)  # fmt: skip
    assert settings.rows(db) == () and db.scalars(select(AuditEvent)).all() == []


def test_back_to_the_default_removes_the_row(db: Session) -> None:
    settings.change(db, {"free.time": "10m"}, defaults=DEFAULTS, actor="ui:siti", now=NOW)
    later = NOW + timedelta(hours=1)
    after = settings.change(db, {"free.time": None, "free.data": None}, defaults=DEFAULTS,
                            actor="ui:siti", now=later)  # fmt: skip
    assert after.free.time_s == 1800 and settings.rows(db) == ()
    resets = db.scalars(select(AuditEvent).where(AuditEvent.action == "setting.reset")).all()
    assert [(e.subject, e.detail) for e in resets] == [("free.time", "10m → 30m (default)")]


def test_the_stored_text_reads_back_to_the_very_same_value() -> None:
    amounts = (("free.time", 5415), ("free.time", 86400 + 1), ("free.data", 123_456_789),
               ("free.data", 10**9), ("free.down", 64_000), ("free.up", 1_500_000))  # fmt: skip
    for key, value in amounts:
        spec = settings.SPECS[key]
        assert spec.parse(spec.text(value)) == value, (key, value)


def test_live_parses_again_only_when_the_rows_change(db: Session) -> None:
    live = settings.Live(DEFAULTS)
    first = live.get(db)
    assert live.get(db) is first
    settings.change(db, {"free.down": "3M"}, defaults=DEFAULTS, actor="t", now=NOW)
    second = live.get(db)
    assert second is not first and second.free.down_bps == 3_000_000
    assert live.get(db) is second


def test_a_row_this_version_cannot_read_leaves_the_default(db: Session) -> None:
    db.add(Setting(key="free.time", value="sejam", updated_at=NOW, updated_by="t"))
    db.add(Setting(key="radius.secret", value="x", updated_at=NOW, updated_by="t"))
    db.flush()
    assert settings.effective(db, DEFAULTS) == DEFAULTS
