"""The admin's settings page (`/pengaturan`): the free allowance, the welcome message, and the
village's and BUMDes' names on the pages and cards; each beside the config file's default, with
a way back to it. The values are checked here field by field with core's own checks, so a
mistake comes back in plain words with nothing saved; the change itself goes through hotspotd
(`settings_set`), which writes, audits and applies it to the phones online in one place.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext

from hotspotd.core import settings
from hotspotd.core.models import Role
from hotspotd.core.settings import Kind
from portal.operator.auth import requires
from portal.operator.daemon import Refused, ask
from portal.web import context
from portal.web import settings as in_force

bp = Blueprint("preferences", __name__, url_prefix="/pengaturan")
RESET = "default:"  # the "back to the default" box of a field: RESET + its key

LABELS: dict[str, Any] = {
    "village.name": lazy_gettext("Village name"),
    "village.operator": lazy_gettext("Run by (BUMDes)"),
    "village.message": lazy_gettext("Welcome message"),
    "free.enabled": lazy_gettext("Offer free internet"),
    "free.time": lazy_gettext("Free time per phone per day"),
    "free.data": lazy_gettext("Free data per phone per day"),
    "free.down": lazy_gettext("Free download speed"),
    "free.up": lazy_gettext("Free upload speed"),
}
GROUPS = (
    (lazy_gettext("On the pages and cards"), ("village.name", "village.operator",
                                              "village.message")),
    (lazy_gettext("Free internet"), ("free.enabled", "free.time", "free.data", "free.down",
                                     "free.up")),
)  # fmt: skip


def _problem(kind: Kind) -> str:
    return {
        Kind.DURATION: _("Write a time like 30m, 1h or 1h30m, or leave it empty for no limit."),
        Kind.SIZE: _("Write data like 100MB or 1GB, or leave it empty for no limit."),
        Kind.RATE: _("Write a speed like 512k or 1M (at least 8k), or leave it empty for no "
                     "limit."),
        Kind.NAME: _("Write a name of 1 to %(n)s letters.", n=settings.NAME_MAX),
        Kind.MESSAGE: _("At most %(n)s letters, as plain text.", n=settings.MESSAGE_MAX),
        Kind.FLAG: _("Tick the box, or leave it empty."),
    }[kind]  # fmt: skip


def shown(spec: settings.Spec, value: Any) -> str:
    """A value as the form shows it: no limit is an empty field."""
    return "" if value is None else spec.text(value)


def default_text(spec: settings.Spec, value: Any) -> str:
    if spec.kind is Kind.FLAG:
        return _("on") if value else _("off")
    if value is None:
        return _("no limit")
    if value == "":
        return _("(empty)")
    return spec.text(value)


def _page(form: dict[str, str], problems: dict[str, str], status: int = 200,
          refused: str | None = None) -> ResponseReturnValue:  # fmt: skip
    defaults = in_force.defaults()
    stored = dict(settings.rows(context.db()))
    page = render_template(
        "settings.html", groups=GROUPS, labels=LABELS, specs=settings.SPECS, form=form,
        problems=problems, refused=refused, stored=stored, reset=RESET,
        defaults={k: default_text(s, s.get(defaults)) for k, s in settings.SPECS.items()},
        kinds=Kind, saved=request.args.get("done") == "saved" and status == 200,
    )  # fmt: skip
    return page, status


@bp.get("")
@requires(Role.ADMIN)
def page() -> ResponseReturnValue:
    now = in_force.current()
    form = {key: shown(spec, spec.get(now)) for key, spec in settings.SPECS.items()}
    return _page(form, {})


@bp.post("")
@requires(Role.ADMIN)
def save() -> ResponseReturnValue:
    now = in_force.current()
    stored = dict(settings.rows(context.db()))
    form: dict[str, str] = {}
    changes: dict[str, str | None] = {}
    problems: dict[str, str] = {}
    for key, spec in settings.SPECS.items():
        if spec.kind is Kind.FLAG:
            text = "true" if request.form.get(key) else "false"
        else:
            text = request.form.get(key, "")[: settings.MESSAGE_MAX + 100]
        form[key] = text
        if request.form.get(RESET + key):
            if key in stored:
                changes[key] = None
            continue
        try:
            value = settings.check(key, text)
        except settings.InvalidSetting:
            problems[key] = _problem(spec.kind)
            continue
        if value != spec.get(now):
            changes[key] = text
    if problems:
        return _page(form, problems, 400)
    if changes:
        try:
            ask("settings_set", changes=changes)
        except Refused as refused:
            return _page(form, {}, 400, refused=refused.message)
    return redirect(url_for("preferences.page", done="saved"), code=303)
