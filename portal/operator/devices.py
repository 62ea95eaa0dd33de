"""Trusted and blocked devices: the warung's till that needs no voucher, the phone that abused
the hotspot. Added and removed through hotspotd (the kernel changes before the page comes back),
each with a note saying whose it is or why."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy import or_, select

from hotspotd.core.models import Device, Role
from portal.operator.auth import requires
from portal.operator.daemon import Refused, ask
from portal.web import context

bp = Blueprint("devices", __name__, url_prefix="/perangkat")
STAFF = (Role.ADMIN, Role.OPERATOR)
OPS = {("trusted", True): "trust", ("trusted", False): "untrust",
       ("blocked", True): "block", ("blocked", False): "unblock"}  # fmt: skip


def _page(problem: str | None = None, status: int = 200) -> ResponseReturnValue:
    flagged = context.db().scalars(
        select(Device)
        .where(or_(Device.trusted.is_(True), Device.blocked.is_(True)))
        .order_by(Device.mac)
        .limit(1000)
    )
    rows = list(flagged)
    page = render_template(
        "devices.html",
        trusted=[d for d in rows if d.trusted],
        blocked=[d for d in rows if d.blocked],
        problem=problem,
        form=request.form,
    )
    return page, status


@bp.get("")
@requires(*STAFF)
def devices() -> ResponseReturnValue:
    return _page()


@bp.post("")
@requires(*STAFF)
def change() -> ResponseReturnValue:
    form = request.form
    flag = form.get("flag", "")
    on = form.get("on", "") == "1"
    op = OPS.get((flag, on))
    if op is None:
        return _page(_("That request was not understood."), 400)
    params = {"mac": form.get("mac", "").strip()[:17]}
    if on:
        params["note"] = form.get("note", "")[:200]
    bad_mac = _("That is not a MAC address. Write it like 02:1a:2b:3c:4d:5e.")
    try:
        ask(op, also={"invalid": bad_mac}, **params)
    except Refused as refused:
        return _page(refused.message, 400)
    return redirect(url_for("devices.devices"), code=303)
