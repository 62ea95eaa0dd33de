"""Who is online now, and the operator's hands on it: kick, extend, block, trust.

Every action is one of hotspotd's operator operations, asked as the signed-in account
(`ui:<name>`), so the kernel has the change when the page comes back and the audit log says
who did it. The page refreshes itself (a meta refresh: no script, so it works with JavaScript
off and under the strict CSP). With 2,000 devices online it shows them a page at a time, the
busiest first, and finds one by a part of its address, MAC, name or code; hotspotd does the
sorting, the search and the paging, and sends only the page shown.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from hotspotd.core import units
from hotspotd.core.models import Role
from portal.operator.auth import requires
from portal.operator.daemon import BY_REASON, Refused, ask

bp = Blueprint("online", __name__, url_prefix="/online")
STAFF = (Role.ADMIN, Role.OPERATOR)
REFRESH_S = 15
PER_PAGE = 25  # devices a page: the busiest first, a few KB each however many are online
MAX_PAGE = 10**6  # as far as hotspotd takes a page number; past the end it gives the last
_IP = r"\d{1,3}(?:\.\d{1,3}){3}"
_SUBJECTS = {  # what each action's link may name: as hotspotd gave it, nothing else
    "kick": re.compile(rf"{_IP}(?:,{_IP}){{0,7}}"),
    "block": re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}"),
    "trust": re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}"),
    "extend": re.compile(r"[0-9A-Z]{3,4}(?:[- ][0-9A-Z]{1,4}){1,3}"),  # ABC-DEF-GHJ, 1234 5678 9
}


@bp.get("")
@requires(*STAFF)
def online() -> ResponseReturnValue:
    find = request.args.get("q", "").strip()[:40]
    page = min(MAX_PAGE, max(1, request.args.get("page", 1, type=int) or 1))
    try:  # hotspotd sorts, searches and pages: only the devices shown come over the socket
        found: dict[str, Any] = ask("online", page=page, per_page=PER_PAGE, find=find or None)
    except Refused as refused:
        return render_template("online.html", rows=None, problem=refused.message,
                               refresh=REFRESH_S)  # fmt: skip
    return render_template(
        "online.html", rows=found["devices"], online=found["online"], found=found["found"],
        find=find, page=found["page"], pages=found["pages"], problem=None, done=_done(),
        refresh=REFRESH_S,
    )  # fmt: skip


def _done() -> str | None:
    """What the last action did, said from our own words: the link names only the action and
    an address, MAC or code, never text of its own (no message can be planted in a link)."""
    action, what = request.args.get("done", ""), request.args.get("what", "")
    pattern = _SUBJECTS.get(action)
    if pattern is None or not pattern.fullmatch(what):
        return None
    said = {
        "kick": _("Logged out: %(what)s. It may log in again."),
        "block": _("Blocked: %(what)s."),
        "trust": _("Trusted: %(what)s."),
        "extend": _("Extended: %(what)s."),
    }.get(action)
    return said % {"what": what} if said else None


@bp.post("/<action>")
@requires(*STAFF)
def act(action: str) -> ResponseReturnValue:
    form = request.form
    try:
        if action == "kick":
            answer = ask("kick", target=form.get("ip", "")[:40])
            what = ",".join(answer["kicked"][:8])
        elif action in ("block", "trust"):
            what = ask(action, mac=form.get("mac", "")[:17])["mac"]
        elif action == "extend":
            seconds = _amount(form.get("time", ""), units.parse_duration)
            data = _amount(form.get("data", ""), units.parse_size)
            if not seconds and not data:
                raise Refused(BY_REASON["nothing_to_add"]())
            answer = ask("extend", code=form.get("code", "")[:40], seconds=seconds, bytes=data)
            what = answer["code"]
        else:
            return render_template("op_error.html", message=_("This page does not exist.")), 404
    except Refused as refused:
        return render_template("online.html", rows=None, problem=refused.message, refresh=0), 400
    return redirect(url_for("online.online", done=action, what=what), code=303)


def _amount(text: str, parse: Any) -> int:
    text = text.strip()[:20]
    if not text:
        return 0
    try:
        return int(parse(text))
    except ValueError:
        raise Refused(BY_REASON["bad_amount"]()) from None
