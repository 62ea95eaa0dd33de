"""Plans and vouchers in the database: batches, states, one allowance shared by devices."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from hotspotd.core import codes, plans, vouchers
from hotspotd.core.models import AuditEvent, Voucher, VoucherState
from hotspotd.core.plans import PlanTerms
from hotspotd.core.vouchers import CheckState
from hotspotd.errors import Conflict, InvalidInput, NotFound, VoucherRejected, VoucherTypo
from tests.conftest import NOW

HARIAN = PlanTerms(
    price_rp=5000,
    validity_s=86400,
    time_s=3 * 3600,
    data_bytes=10**9,
    down_bps=2_000_000,
    up_bps=1_000_000,
    devices=2,
    idle_s=900,
)


@pytest.fixture
def harian(db: Session):  # type: ignore[no-untyped-def]
    return plans.add(db, "Harian", HARIAN, NOW)


def test_plan_add_keeps_every_term(db: Session, harian) -> None:  # type: ignore[no-untyped-def]
    found = plans.find(db, "harian")  # names are found in any case
    assert found.id == harian.id
    assert (found.price_rp, found.validity_s, found.time_s, found.data_bytes) == (
        5000,
        86400,
        10800,
        10**9,
    )
    assert (found.down_bps, found.up_bps, found.devices, found.idle_s) == (
        2_000_000,
        1_000_000,
        2,
        900,
    )


def test_plan_limits_may_be_none(db: Session) -> None:
    p = plans.add(db, "Bebas", PlanTerms(price_rp=0), NOW)
    assert (p.validity_s, p.time_s, p.data_bytes, p.down_bps, p.devices, p.idle_s) == (None,) * 6


def test_duplicate_and_bad_plans_are_refused(db: Session, harian) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Conflict, match="exists already"):
        plans.add(db, "HARIAN", HARIAN, NOW)
    with pytest.raises(InvalidInput, match="price"):
        plans.add(db, "Neg", PlanTerms(price_rp=-5), NOW)
    with pytest.raises(InvalidInput, match="time_s must be more than zero"):
        plans.add(db, "Zero", PlanTerms(price_rp=1, time_s=0), NOW)
    with pytest.raises(InvalidInput, match="name"):
        plans.add(db, "   ", HARIAN, NOW)


def test_plan_edit_changes_and_clears_limits(db: Session, harian) -> None:  # type: ignore[no-untyped-def]
    edited = plans.edit(
        db, "Harian", {"time_s": None, "price_rp": 6000}, "Harian Plus", actor="cli:siti", now=NOW
    )
    assert edited.time_s is None and edited.price_rp == 6000 and edited.name == "Harian Plus"
    assert edited.data_bytes == 10**9  # untouched
    with pytest.raises(NotFound):
        plans.find(db, "Harian")
    (row,) = db.scalars(select(AuditEvent).where(AuditEvent.action == "plan.edit"))
    assert (row.actor, row.subject) == ("cli:siti", "Harian")
    assert row.detail == "name=Harian Plus, price_rp=6000, time_s=None"


def test_retired_plan_makes_no_vouchers_but_old_ones_stay_good(db: Session, harian) -> None:  # type: ignore[no-untyped-def]
    _, made = vouchers.make_batch(db, plan_name="Harian", count=2, created_by="op", now=NOW)
    plans.retire(db, "Harian", NOW)
    with pytest.raises(Conflict, match="retired"):
        vouchers.make_batch(db, plan_name="Harian", count=1, created_by="op", now=NOW)
    assert vouchers.check(db, made[0].code, NOW).state is CheckState.UNUSED
    assert plans.listing(db) == []
    assert [p.name for p, _, _ in plans.listing(db, include_retired=True)] == ["Harian"]


def test_batch_makes_unique_valid_codes_and_records_who_and_when(db: Session, harian) -> None:  # type: ignore[no-untyped-def]
    batch, made = vouchers.make_batch(
        db, plan_name="Harian", count=300, created_by="siti", now=NOW, batch_name="Warung Bu Siti"
    )
    assert batch.count == 300 and batch.created_by == "siti" and batch.created_at == NOW
    assert batch.name == "Warung Bu Siti" and batch.plan.name == "Harian"
    codes_made = [v.code for v in made]
    assert len(set(codes_made)) == 300
    assert all(codes.check(c).ok for c in codes_made)
    assert all(v.state is VoucherState.UNUSED and v.price_rp == 5000 for v in made)
    audit = db.scalars(select(AuditEvent).where(AuditEvent.action == "voucher.make")).one()
    assert audit.actor == "siti" and "300" in audit.detail
    with pytest.raises(Conflict, match="batch named"):
        vouchers.make_batch(
            db, plan_name="Harian", count=1, created_by="x", now=NOW, batch_name="Warung Bu Siti"
        )


def test_digit_codes_on_request(db: Session, harian) -> None:  # type: ignore[no-untyped-def]
    _, made = vouchers.make_batch(
        db, plan_name="Harian", count=20, created_by="op", now=NOW, kind=codes.CodeKind.DIGITS
    )
    assert all(v.code.isdigit() and len(v.code) == 11 for v in made)
    assert vouchers.check(db, codes.display(made[0].code), NOW).state is CheckState.UNUSED


@pytest.mark.parametrize("count", [0, -1, vouchers.MAX_BATCH + 1])
def test_batch_size_is_bounded(db: Session, harian, count: int) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput, match="count"):
        vouchers.make_batch(db, plan_name="Harian", count=count, created_by="op", now=NOW)


def test_typo_is_caught_without_asking_the_database(db: Session, harian) -> None:  # type: ignore[no-untyped-def]
    _, (v,) = vouchers.make_batch(db, plan_name="Harian", count=1, created_by="op", now=NOW)
    db.commit()
    typo = v.code[:-1] + ("A" if v.code[-1] != "A" else "B")
    statements: list[str] = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    engine = db.get_bind()
    event.listen(engine, "before_cursor_execute", listener)
    try:
        assert vouchers.check(db, typo, NOW).state is CheckState.TYPO
        with pytest.raises(VoucherTypo):
            vouchers.find(db, typo)
        assert statements == []
        assert vouchers.check(db, v.code.lower(), NOW).state is CheckState.UNUSED
        assert statements  # a good code does ask
    finally:
        event.remove(engine, "before_cursor_execute", listener)


def test_unknown_code_that_passes_the_check(db: Session, harian) -> None:  # type: ignore[no-untyped-def]
    assert vouchers.check(db, codes.make(), NOW).state is CheckState.UNKNOWN


def test_life_of_a_voucher(db: Session, harian) -> None:  # type: ignore[no-untyped-def]
    _, (v,) = vouchers.make_batch(db, plan_name="Harian", count=1, created_by="op", now=NOW)
    assert vouchers.check(db, v.code, NOW).state is CheckState.UNUSED

    later = NOW + timedelta(hours=2)
    vouchers.redeem(db, v, later)
    assert v.state is VoucherState.ACTIVE and v.first_used_at == later
    vouchers.redeem(db, v, later + timedelta(hours=1))  # a second device: clock not restarted
    assert v.first_used_at == later

    # two devices on one voucher draw from the same allowance
    vouchers.charge(v, seconds=600, bytes_used=300 * 10**6)
    vouchers.charge(v, seconds=600, bytes_used=200 * 10**6)
    result = vouchers.check(db, v.code, later + timedelta(minutes=20))
    assert result.state is CheckState.ACTIVE
    assert result.standing is not None
    assert result.standing.data_left == 500 * 10**6
    assert result.standing.seconds_left == 3 * 3600 - 1200

    vouchers.charge(v, seconds=0, bytes_used=500 * 10**6)
    assert vouchers.check(db, v.code, later).state is CheckState.USED_UP
    with pytest.raises(VoucherRejected) as rejected:
        vouchers.redeem(db, v, later)
    assert rejected.value.state == "used_up"


def test_validity_expires_from_first_use(db: Session, harian) -> None:  # type: ignore[no-untyped-def]
    _, (v,) = vouchers.make_batch(db, plan_name="Harian", count=1, created_by="op", now=NOW)
    vouchers.redeem(db, v, NOW)
    assert vouchers.check(db, v.code, NOW + timedelta(hours=23)).state is CheckState.ACTIVE
    assert vouchers.check(db, v.code, NOW + timedelta(hours=24)).state is CheckState.EXPIRED


def test_revoke(db: Session, harian) -> None:  # type: ignore[no-untyped-def]
    _, (v,) = vouchers.make_batch(db, plan_name="Harian", count=1, created_by="op", now=NOW)
    vouchers.revoke(db, codes.display(v.code).lower(), actor="op", now=NOW)
    assert vouchers.check(db, v.code, NOW).state is CheckState.REVOKED
    with pytest.raises(Conflict):
        vouchers.revoke(db, v.code, actor="op", now=NOW)
    with pytest.raises(VoucherRejected):
        vouchers.redeem(db, v, NOW)
    assert db.scalars(select(AuditEvent.action)).all().count("voucher.revoke") == 1


def test_listing_filters(db: Session, harian) -> None:  # type: ignore[no-untyped-def]
    plans.add(db, "Mingguan", PlanTerms(price_rp=25000, validity_s=7 * 86400), NOW)
    vouchers.make_batch(db, plan_name="Harian", count=3, created_by="op", now=NOW, batch_name="A")
    vouchers.make_batch(db, plan_name="Mingguan", count=2, created_by="op", now=NOW, batch_name="B")
    assert len(vouchers.listing(db)) == 5
    assert {v.plan.name for v in vouchers.listing(db, plan_name="mingguan")} == {"Mingguan"}
    assert len(vouchers.listing(db, batch_name="A")) == 3
    first = db.scalars(select(Voucher)).first()
    assert first is not None
    vouchers.revoke(db, first.code, actor="op", now=NOW)
    assert len(vouchers.listing(db, state=VoucherState.REVOKED)) == 1
    with pytest.raises(NotFound):
        vouchers.listing(db, batch_name="nope")
