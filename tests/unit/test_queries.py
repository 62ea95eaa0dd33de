"""The open-session queries: every caller sees the same sessions as online."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session as DB

from hotspotd.core import login, queries
from tests.conftest import NOW
from tests.unit.test_sessions import IP1, IP2, IP3, MAC1, MAC2, MAC3, make


def test_open_session_queries_agree(db: DB, engine: Engine) -> None:
    (shared,) = make(db, devices=2)
    (other,) = make(db, "Mingguan")
    a = login.login_voucher(db, ip=IP1, mac=MAC1, code=shared, now=NOW).session
    b = login.login_voucher(db, ip=IP2, mac=MAC2, code=shared, now=NOW).session
    c = login.login_voucher(db, ip=IP3, mac=MAC3, code=other, now=NOW).session
    login.logout(db, ip=IP3, now=NOW + timedelta(minutes=1))
    db.commit()

    assert [s.id for s in queries.open_sessions(db)] == [a.id, b.id]
    assert list(queries.open_at(db, IP2)) == [b] and list(queries.open_at(db, IP3)) == []
    assert queries.open_session_at(db, str(IP1)) is a
    assert queries.open_session_at(db, IP1, MAC1.upper()) is a
    assert queries.open_session_at(db, IP1, MAC2) is None  # someone else's address
    assert list(queries.open_of_device(db, MAC2.upper())) == [b]
    assert list(queries.open_of_device(db, MAC3)) == []
    assert a.voucher_id is not None and c.voucher_id is not None
    assert list(queries.open_on_voucher(db, a.voucher_id)) == [a, b]
    assert queries.devices_on_voucher(db, a.voucher_id) == 2
    assert queries.devices_on_voucher(db, c.voucher_id) == 0
    assert queries.open_addresses(db) == {str(IP1), str(IP2)}
    with engine.connect() as conn:  # the portal reads it on a bare connection
        assert queries.open_addresses(conn) == {str(IP1), str(IP2)}
