"""The audit trail: one writer, and every audit row goes through it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session as DB

from hotspotd.core import audit
from hotspotd.core.models import AuditEvent
from tests.conftest import NOW

ROOT = Path(__file__).resolve().parents[2]
WRITER = ROOT / "hotspotd" / "core" / "audit.py"


def test_record_writes_a_row_with_its_fields(db: DB) -> None:
    event = audit.record(db, NOW, "op", "voucher.extend", "ABCD2345", "+60s +0B")
    db.commit()
    row = db.scalars(select(AuditEvent)).one()
    assert row is event
    assert (row.at, row.actor, row.action, row.subject, row.detail) == (
        NOW,
        "op",
        "voucher.extend",
        "ABCD2345",
        "+60s +0B",
    )
    bare = audit.record(db, NOW, "op", "device.block", "02:00:00:00:00:01")
    db.flush()
    assert bare.detail == ""


@pytest.mark.parametrize(
    "fields",
    [
        ("", "voucher.make", "batch"),
        ("op", "", "batch"),
        ("op", "voucher.make", ""),
        ("x" * (audit.LIMITS["actor"] + 1), "voucher.make", "batch"),
        ("op", "x" * (audit.LIMITS["action"] + 1), "batch"),
        ("op", "voucher.make", "x" * (audit.LIMITS["subject"] + 1)),
    ],
)
def test_record_refuses_empty_or_too_long_fields(db: DB, fields: tuple[str, str, str]) -> None:
    with pytest.raises(ValueError):
        audit.record(db, NOW, *fields)
    assert db.scalars(select(AuditEvent)).all() == []


def test_a_long_detail_is_kept_whole(db: DB) -> None:
    audit.record(db, NOW, "op", "voucher.make", "batch", "d" * 5000)
    db.flush()
    assert db.scalars(select(AuditEvent.detail)).one() == "d" * 5000


def _constructs_audit_event(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = (
                f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            )
            if name == "AuditEvent":
                lines.append(node.lineno)
    return lines


def test_only_core_audit_constructs_audit_events() -> None:
    sources = [p for d in ("hotspotd", "portal") for p in sorted((ROOT / d).rglob("*.py"))]
    assert WRITER in sources
    offenders = {
        f"{p.relative_to(ROOT)}:{line}"
        for p in sources
        if p != WRITER
        for line in _constructs_audit_event(p)
    }
    assert offenders == set(), "write audit rows with hotspotd.core.audit.record"
    assert _constructs_audit_event(WRITER)  # the check does see a construction
