"""The operator's voucher pages: the batches, making one, and printing it (A4 sheet, 58 mm roll,
CSV). Admins and operators only; kominfo reads reports, it does not make money."""

from __future__ import annotations

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy import func, select

from hotspotd.core import codes, plans, vouchers
from hotspotd.core.models import Plan, Role, Voucher, VoucherBatch, VoucherState
from hotspotd.errors import ClientError
from portal.operator import printing
from portal.operator.auth import actor, requires
from portal.operator.daemon import Refused, ask
from portal.web import context

bp = Blueprint("vouchers", __name__, url_prefix="/voucher")
STAFF = (Role.ADMIN, Role.OPERATOR)
MAX_NAME = 64


def _batches() -> list[tuple[VoucherBatch, int]]:
    """Every batch, newest first, with how many of its cards are still unused."""
    unused = (
        select(Voucher.batch_id, func.count(Voucher.id).label("n"))
        .where(Voucher.state == VoucherState.UNUSED)
        .group_by(Voucher.batch_id)
        .subquery()
    )
    rows = context.db().execute(
        select(VoucherBatch, func.coalesce(unused.c.n, 0))
        .outerjoin(unused, unused.c.batch_id == VoucherBatch.id)
        .order_by(VoucherBatch.created_at.desc(), VoucherBatch.id.desc())
        .limit(200)
    )
    return [(batch, int(n)) for batch, n in rows]


def _page(error: str | None = None, status: int = 200) -> ResponseReturnValue:
    on_sale = context.db().scalars(
        select(Plan).where(Plan.retired_at.is_(None)).order_by(Plan.name)
    )
    page = render_template(
        "vouchers.html", batches=_batches(), plans=list(on_sale), error=error,
        max_batch=vouchers.MAX_BATCH, form=request.form,
    )  # fmt: skip
    return page, status


@bp.get("")
@requires(*STAFF)
def batches() -> ResponseReturnValue:
    return _page()


@bp.post("")
@requires(*STAFF)
def make() -> ResponseReturnValue:
    form = request.form
    try:
        count = int(form.get("count", "").strip() or "0")
    except ValueError:
        return _page(_("How many cards? Give a whole number."), 400)
    name = form.get("name", "").strip()[:MAX_NAME] or None
    kind = codes.CodeKind.DIGITS if form.get("digits") == "1" else codes.CodeKind.ALNUM
    db = context.db()
    try:
        plan = plans.find(db, form.get("plan", "")[:MAX_NAME])
        batch, _made = vouchers.make_batch(
            db, plan_name=plan.name, count=count, created_by=actor(),
            now=context.now(), batch_name=name, kind=kind,
        )  # fmt: skip
    except ClientError as exc:
        db.rollback()
        return _page(_refusal(exc), 400)
    db.commit()
    return redirect(url_for("vouchers.batches", made=batch.id), code=303)


def _refusal(exc: ClientError) -> str:
    messages = {
        "unknown_plan": _("There is no such plan. Choose one from the list."),
        "plan_retired": _("That plan is retired: no new cards are made for it."),
        "batch_exists": _("A batch with that name exists already. Choose another name."),
        "no_codes_left": _("No new codes could be made. Try a smaller batch."),
    }
    return messages.get(
        exc.reason or "",
        _("From 1 to %(most)s cards at a time.", most=vouchers.MAX_BATCH)
        if exc.code == "invalid"
        else _("That could not be done. Check the form and try again."),
    )


@bp.post("/cabut")
@requires(*STAFF)
def revoke() -> ResponseReturnValue:
    """A lost or stolen card, by its code, or every card of a batch still unused or in use:
    revoked through hotspotd, so the phones on them are cut before the page comes back."""
    form = request.form
    if form.get("batch"):
        if form.get("sure") != "1":  # a whole batch is many cards: never on one stray tap
            return _page(_("Tick “sure” to revoke a whole batch."), 400)
        try:
            batch = _batch(int(form.get("batch", "")))
        except ValueError:
            return _page(_("That request was not understood."), 400)
        asked = {"batch": batch.id}
    else:
        asked = {"code": form.get("code", "").strip()[:40]}
    try:
        answer = ask("revoke", **asked)
    except Refused as refused:
        return _page(refused.message, 400)
    done = len(answer["codes"]) if "codes" in answer else 1
    return redirect(url_for("vouchers.batches", revoked=done), code=303)


@bp.get("/<int:batch_id>/a4")
@requires(*STAFF)
def print_a4(batch_id: int) -> ResponseReturnValue:
    batch = _batch(batch_id)
    cards = printing.cards_for(context.db(), batch.id, context.cfg())
    return printing.render_a4(cards, title=batch.name)


@bp.get("/<int:batch_id>/struk")
@requires(*STAFF)
def print_roll(batch_id: int) -> ResponseReturnValue:
    batch = _batch(batch_id)
    cards = printing.cards_for(context.db(), batch.id, context.cfg())
    return printing.render_roll(cards, title=batch.name)


@bp.get("/<int:batch_id>/csv")
@requires(*STAFF)
def csv(batch_id: int) -> ResponseReturnValue:
    batch = _batch(batch_id)
    body = printing.batch_csv(context.db(), batch.id, now=context.now())
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in batch.name)[:40] or "batch"
    return Response(
        body,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="voucher-{safe}.csv"'},
    )


def _batch(batch_id: int) -> VoucherBatch:
    batch = context.db().get(VoucherBatch, batch_id)
    if batch is None:
        abort(404)
    return batch
