"""The audit log, as the operator's UI shows it: who did what, when, on what; read only.

Rows are written by `hotspotd.core.audit.record` in the same transaction as the change; no page
and no command edits or deletes them. Admins read them, newest first, filtered by who, what and
day, a page at a time.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

from flask import Blueprint, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import Select, select

from hotspotd.core.models import AuditEvent, Role
from portal.operator.auth import requires
from portal.web import context

bp = Blueprint("audit", __name__, url_prefix="/audit")
PAGE = 50
_WORD = re.compile(r"[\w:.@-]{1,64}")


@bp.get("")
@requires(Role.ADMIN)
def log() -> ResponseReturnValue:
    args = request.args
    actor = args.get("actor", "").strip()
    action = args.get("action", "").strip()
    day_text = args.get("day", "").strip()
    query: Select[tuple[AuditEvent]] = select(AuditEvent)
    problems = []
    if actor:
        if _WORD.fullmatch(actor):
            query = query.where(AuditEvent.actor == actor)
        else:
            problems.append("actor")
    if action:
        if _WORD.fullmatch(action):
            query = query.where(AuditEvent.action.startswith(action, autoescape=True))
        else:
            problems.append("action")
    day = None
    if day_text:
        try:
            day = date.fromisoformat(day_text)
        except ValueError:
            problems.append("day")
    if day is not None:
        tz = context.cfg().village.tz
        start = datetime.combine(day, time(0), tzinfo=tz)
        query = query.where(AuditEvent.at >= start, AuditEvent.at < start + timedelta(days=1))
    try:
        page = max(1, min(int(args.get("page", "1")), 10_000))
    except ValueError:
        page = 1
    rows = list(
        context.db().scalars(
            query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
            .offset((page - 1) * PAGE)
            .limit(PAGE + 1)
        )
    )
    actions = context.db().scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action))
    return render_template(
        "audit.html", rows=rows[:PAGE], more=len(rows) > PAGE, page=page, actor=actor,
        action=action, day=day_text, problems=problems, actions=list(actions),
    )  # fmt: skip
