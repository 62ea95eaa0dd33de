"""The JSON shapes of plans, vouchers, listings, lessons and operators: their keys, in order,
and values that JSON carries as they are."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy.orm import Session

from hotspotd.core import codes, content, operators, plans, records, vouchers
from hotspotd.core.models import LessonTopic, Role, VoucherState
from hotspotd.core.plans import PlanTerms
from tests.conftest import NOW

HARIAN = PlanTerms(price_rp=5000, validity_s=86400, time_s=3 * 3600, data_bytes=10**9, idle_s=900)


def _same_through_json(record: object) -> None:
    assert json.loads(json.dumps(record)) == record


def test_a_plan_record_has_its_terms_and_counts_only_when_given(db: Session) -> None:
    plan = plans.add(db, "Harian", HARIAN, NOW)
    record = records.plan_record(plan)
    assert list(record) == [
        "name",
        "price_rp",
        "validity_s",
        "time_s",
        "data_bytes",
        "down_bps",
        "up_bps",
        "devices",
        "idle_s",
        "retired",
    ]
    assert record["price_rp"] == 5000
    assert record["down_bps"] is None  # no limit is null, not 0
    assert record["retired"] is False
    counted = records.plan_record(plan, 4, 1)
    assert (counted["vouchers_unused"], counted["vouchers_active"]) == (4, 1)
    assert list(counted)[-2:] == ["vouchers_unused", "vouchers_active"]
    plans.retire(db, "Harian", NOW)
    assert records.plan_record(plan)["retired"] is True
    _same_through_json(counted)


def test_a_voucher_record_says_where_it_stands_at_the_moment_asked(db: Session) -> None:
    plans.add(db, "Harian", HARIAN, NOW)
    _, made = vouchers.make_batch(
        db, plan_name="Harian", count=1, created_by="test", now=NOW, batch_name="B1"
    )
    card = made[0]
    unused = records.voucher_record(card, NOW)
    assert unused == {
        "code": codes.display(card.code),
        "plan": "Harian",
        "batch": "B1",
        "price_rp": 5000,
        "state": "unused",
        "first_used_at": None,
        "used_seconds": 0,
        "used_bytes": 0,
        "time_left_s": 3 * 3600,
        "data_left_bytes": 10**9,
        "valid_until": None,
    }
    card.first_used_at = NOW
    card.state = VoucherState.ACTIVE
    vouchers.charge(card, seconds=600, bytes_used=1000)
    active = records.voucher_record(card, NOW + timedelta(minutes=10))
    assert active["state"] == "active"
    assert active["first_used_at"] == NOW.isoformat()
    assert active["valid_until"] == (NOW + timedelta(days=1)).isoformat()
    assert (active["time_left_s"], active["data_left_bytes"]) == (3 * 3600 - 600, 10**9 - 1000)
    assert records.voucher_record(card, NOW + timedelta(days=2))["state"] == "expired"
    _same_through_json(active)


def test_listing_and_lesson_records(db: Session) -> None:
    item = content.add_listing(
        db,
        content.ListingFields(title="Keripik", seller="Bu Sari", price_rp=15000, unit="per kg"),
        NOW,
    )
    listing = records.listing_record(item)
    assert list(listing) == [
        "id",
        "title",
        "seller",
        "price_rp",
        "unit",
        "contact",
        "description",
        "hidden",
        "updated_at",
    ]
    assert (listing["price_rp"], listing["hidden"]) == (15000, False)
    assert listing["updated_at"] == item.updated_at.isoformat()
    _same_through_json(listing)

    lesson, _ = content.put_lesson(
        db,
        content.LessonFields(
            slug="internet-dasar",
            topic=LessonTopic.INTERNET,
            title="Internet dasar",
            summary="Mulai di sini.",
            body="Satu paragraf.",
        ),
        NOW,
    )
    assert records.lesson_record(lesson) == {
        "slug": "internet-dasar",
        "topic": "internet",
        "title": "Internet dasar",
        "summary": "Mulai di sini.",
        "hidden": False,
    }


def test_a_time_not_there_is_null() -> None:
    assert records.iso(None) is None
    assert records.iso(NOW) == "2026-11-23T03:00:00+00:00"


def test_an_operator_record_has_no_password_hash(db: Session) -> None:
    op = operators.add(db, "Siti", Role.ADMIN, "kopi-tubruk-pagi", actor="t", now=NOW)
    record = records.operator_record(op)
    assert record == {
        "username": "siti",
        "role": "admin",
        "created_at": NOW.isoformat(),
        "disabled_at": None,
    }
    assert "argon2" not in json.dumps(record)
    _same_through_json(record)
