"""The audit trail: the one place that writes `AuditEvent` rows.

Who did what, when — operator actions and the events that must be kept (a card taken over, a
clock correction). Every writer calls `record`, so a row is always checked the same way before
it is added; the caller owns the transaction. Rows are never rewritten.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Session as DB

from hotspotd.core.models import AuditEvent


def _length(column: str) -> int:
    kind = AuditEvent.__table__.c[column].type
    assert isinstance(kind, String) and kind.length is not None
    return kind.length


# Read from the model, so a migration that widens a column widens the check with it. SQLite
# would store a longer text silently where PostgreSQL refuses it: refuse it on both, here.
LIMITS = {name: _length(name) for name in ("actor", "action", "subject")}


def record(
    db: DB, now: datetime, actor: str, action: str, subject: str, detail: str = ""
) -> AuditEvent:
    """Add one audit row. Raises ValueError on an empty or too long actor, action or subject."""
    for name, value in (("actor", actor), ("action", action), ("subject", subject)):
        if not value:
            raise ValueError(f"an audit event needs a {name}")
        if len(value) > LIMITS[name]:
            raise ValueError(f"an audit event's {name} has at most {LIMITS[name]} characters")
    event = AuditEvent(at=now, actor=actor, action=action, subject=subject, detail=detail)
    db.add(event)
    return event
