"""The operator's voucher pages: the batches, making one, and printing it (A4 sheet, 58 mm roll,
CSV). Admins and operators only; kominfo reads reports, it does not make money."""

from __future__ import annotations

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy import func, select

from hotspotd.core import codes, plans, voucher_queries, vouchers
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
        max_batch=vouchers.MAX_BATCH, max_note=vouchers.MAX_NOTE, form=request.form,
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
    note = form.get("note", "")[: vouchers.MAX_NOTE * 2]  # too long is said, not cut
    kind = codes.CodeKind.DIGITS if form.get("digits") == "1" else codes.CodeKind.ALNUM
    db = context.db()
    try:
        plan = plans.find(db, form.get("plan", "")[:MAX_NAME])
        batch, _made = vouchers.make_batch(
            db, plan_name=plan.name, count=count, created_by=actor(),
            now=context.now(), batch_name=name, kind=kind, note=note,
            zone=context.cfg().village.tz,
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
        "note_too_long": _(
            "The note is too long: at most %(most)s characters.", most=vouchers.MAX_NOTE
        ),
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
        voucher = voucher_queries.find_code(context.db(), str(asked.get("code", "")))
        if form.get("back") == "card" and voucher is not None:
            return _card_page(voucher, problem=refused.message), 400
        return _page(refused.message, 400)
    done = len(answer["codes"]) if "codes" in answer else 1
    if form.get("back") == "card" and "code" in answer:
        return redirect(url_for("vouchers.card", code=answer["code"], revoked=1), code=303)
    return redirect(url_for("vouchers.batches", revoked=done), code=303)


@bp.get("/kartu")
@requires(*STAFF)
def cards() -> ResponseReturnValue:
    """Every card, newest first, a page at a time, narrowed by plan, batch, state or code."""
    args = request.args
    wanted = voucher_queries.VoucherFilter(
        plan_id=_number(args.get("plan")),
        batch_id=_number(args.get("batch")),
        state=_state(args.get("state")),
        code=args.get("q", "")[:40] or None,
    )
    found = voucher_queries.voucher_page(
        context.db(), wanted, _number(args.get("page")) or 1, context.now()
    )
    db = context.db()
    plan_choices = db.scalars(select(Plan).order_by(Plan.retired_at.is_not(None), Plan.name))
    batch_choices = list(
        db.scalars(select(VoucherBatch).order_by(VoucherBatch.id.desc()).limit(200))
    )
    if wanted.batch_id and all(b.id != wanted.batch_id for b in batch_choices):
        older = db.get(VoucherBatch, wanted.batch_id)
        batch_choices += [older] if older else []
    keep = {"plan": wanted.plan_id, "batch": wanted.batch_id, "q": wanted.code,
            "state": wanted.state.value if wanted.state else None}  # fmt: skip
    return render_template(
        "cards.html", found=found, wanted=wanted, keep={k: v for k, v in keep.items() if v},
        plans=list(plan_choices), batches=batch_choices, state_names=_state_names(),
    )  # fmt: skip


@bp.get("/kartu/<path:code>")
@requires(*STAFF)
def card(code: str) -> ResponseReturnValue:
    """One card's history: its terms, use, devices and latest sessions; revoke it from here."""
    voucher = voucher_queries.find_code(context.db(), code[:40])
    if voucher is None:
        message = _(
            "No card has the code %(code)s. Check the code on the card (letters and digits, "
            "dashes do not matter), or look for it in the list of cards.",
            code=code[:40],
        )
        return render_template("card_missing.html", message=message), 404
    return _card_page(voucher, revoked=request.args.get("revoked") == "1")


def _card_page(voucher: Voucher, **extra: object) -> str:
    found = voucher_queries.history(context.db(), voucher, context.now())
    return render_template(
        "card.html", v=found, state_names=_state_names(), end_reasons=_end_reasons(), **extra
    )


def _state_names() -> dict[str, str]:
    return {
        VoucherState.UNUSED: _("unused"),
        VoucherState.ACTIVE: _("in use"),
        VoucherState.USED_UP: _("used up"),
        VoucherState.EXPIRED: _("expired"),
        VoucherState.REVOKED: _("revoked"),
    }


def _end_reasons() -> dict[str, str]:
    """Why a session ended, in the operator's words (accounting.EndReason, sessions.EndCause)."""
    return {
        "validity": _("validity over"),
        "time": _("time used up"),
        "data": _("data used up"),
        "idle": _("idle too long"),
        "logout": _("logged out"),
        "kicked": _("logged out by the operator"),
        "replaced": _("another device took its place"),
        "switched": _("the device used another card"),
        "revoked": _("card revoked"),
        "blocked": _("device blocked"),
        "lease": _("its address went to another device"),
        "left": _("the phone went away"),
        "free_off": _("free internet switched off"),
        "day_end": _("end of the day"),
    }


def _number(text: str | None) -> int | None:
    """A positive id or page number from the query string; anything else is left out."""
    text = (text or "").strip()
    if not text.isdigit() or len(text) > 9:
        return None
    return int(text) or None


def _state(text: str | None) -> VoucherState | None:
    try:
        return VoucherState(text) if text else None
    except ValueError:
        return None


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
