"""The plans ("paket") the village sells: list, add, change, retire. A plan in use is retired,
never deleted. Changes go through hotspotd, so the phones on the plan get its new speed and
limits at once; the checks are core's (`hotspotd.core.plans`, `units`), the same as the CLI's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext

from hotspotd.core import plans, units
from hotspotd.core.models import Plan, Role
from hotspotd.errors import ClientError
from portal.operator.auth import actor, requires
from portal.operator.daemon import Refused, ask, said
from portal.web import context

bp = Blueprint("plans", __name__, url_prefix="/paket")
STAFF = (Role.ADMIN, Role.OPERATOR)

# form field → (plan term, parser, how to show a value in the form, its label)
TERMS: dict[str, tuple[str, Callable[[str], int], Callable[[int], str], Any]] = {
    "validity": ("validity_s", units.parse_duration, units.format_duration,
                 lazy_gettext("Valid for, from first use")),
    "time": ("time_s", units.parse_duration, units.format_duration, lazy_gettext("Online time")),
    "data": ("data_bytes", units.parse_size, units.format_size, lazy_gettext("Data")),
    "down": ("down_bps", units.parse_rate, units.format_rate, lazy_gettext("Download speed")),
    "up": ("up_bps", units.parse_rate, units.format_rate, lazy_gettext("Upload speed")),
    "devices": ("devices", units.parse_count, str, lazy_gettext("Devices at once")),
    "idle": ("idle_s", units.parse_duration, units.format_duration,
             lazy_gettext("Log out after idle")),
}  # fmt: skip
EXAMPLES = {"validity": "1d", "time": "3h", "data": "1GB", "down": "2M", "up": "1M",
            "devices": "1", "idle": "15m"}  # fmt: skip


class FormProblem(Exception):
    pass


def _terms(form: Any) -> dict[str, int | None]:
    """The limits typed in the form; an empty field is no limit."""
    out: dict[str, int | None] = {}
    for field, (term, parse, _show, label) in TERMS.items():
        text = form.get(field, "").strip()[:20]
        if not text or text.lower() in ("-", "none", "tanpa batas"):
            out[term] = None
            continue
        try:
            out[term] = parse(text)
        except ValueError:
            raise FormProblem(
                _("%(field)s: write it like %(example)s, or leave it empty for no limit.",
                  field=label, example=EXAMPLES[field])
            ) from None  # fmt: skip
    return out


def _price(form: Any) -> int:
    try:
        return units.parse_price(form.get("price", "")[:20])
    except ValueError:
        raise FormProblem(_("Price: write it in rupiah, like 5000 or 5.000.")) from None


def _shown(plan: Plan | None) -> dict[str, str]:
    if plan is None:
        return {"idle": "15m"}  # as the CLI: plans end idle sessions unless told otherwise
    values = {"name": plan.name, "price": str(plan.price_rp)}
    for field, (term, _parse, show, _label) in TERMS.items():
        value = getattr(plan, term)
        values[field] = show(value) if value is not None else ""
    return values


def _list(problem: str | None = None, status: int = 200) -> ResponseReturnValue:
    rows = plans.listing(context.db(), include_retired=True)
    form = request.form if problem else _shown(None)
    page = render_template("plans.html", rows=rows, problem=problem, form=form, terms=TERMS,
                           examples=EXAMPLES)  # fmt: skip
    return page, status


@bp.get("")
@requires(*STAFF)
def listing() -> ResponseReturnValue:
    return _list()


@bp.post("")
@requires(*STAFF)
def add() -> ResponseReturnValue:
    db = context.db()
    try:
        terms = plans.PlanTerms(price_rp=_price(request.form), **_terms(request.form))
        plans.add(db, request.form.get("name", "")[:100], terms, context.now(), actor=actor())
    except FormProblem as problem:
        return _list(str(problem), 400)
    except ClientError as exc:
        db.rollback()
        return _list(said(exc), 400)
    db.commit()
    return redirect(url_for("plans.listing"), code=303)


def _plan(plan_id: int) -> Plan:
    plan = context.db().get(Plan, plan_id)
    if plan is None:
        abort(404)
    return plan


@bp.get("/<int:plan_id>")
@requires(*STAFF)
def edit(plan_id: int) -> ResponseReturnValue:
    plan = _plan(plan_id)
    return render_template("plan_edit.html", plan=plan, form=_shown(plan), terms=TERMS,
                           examples=EXAMPLES, problem=None)  # fmt: skip


@bp.post("/<int:plan_id>")
@requires(*STAFF)
def save(plan_id: int) -> ResponseReturnValue:
    plan = _plan(plan_id)
    form = request.form
    try:
        changes: dict[str, int | None] = {"price_rp": _price(form), **_terms(form)}
        new_name = " ".join(form.get("name", "").split())[:64] or plan.name
        ask("plan_edit", name=plan.name, changes=changes,
            new_name=new_name if new_name != plan.name else None)  # fmt: skip
    except FormProblem as problem:
        return _edit_again(plan, str(problem))
    except Refused as refused:
        return _edit_again(plan, refused.message)
    return redirect(url_for("plans.listing"), code=303)


def _edit_again(plan: Plan, problem: str) -> ResponseReturnValue:
    page = render_template("plan_edit.html", plan=plan, form=request.form, terms=TERMS,
                           examples=EXAMPLES, problem=problem)  # fmt: skip
    return page, 400


@bp.post("/<int:plan_id>/pensiun")
@requires(*STAFF)
def retire(plan_id: int) -> ResponseReturnValue:
    plan = _plan(plan_id)
    db = context.db()
    try:
        plans.retire(db, plan.name, context.now(), actor=actor())
    except ClientError as exc:
        db.rollback()
        return _list(said(exc), 400)
    db.commit()
    return redirect(url_for("plans.listing"), code=303)
