"""The admin's backups page (`/cadangan`): the nightly backups and those made on asking, each to
download, and "back up now".

hotspotd makes the backup (`backup_now`): as root it writes into the state folder's `backups/`,
readable by the operator UI's group only (`hotspotd.backup.rotation`), never by the residents'
portal. This page streams only files it finds in that listing, looked up by name: no path from
the request is ever used as a path. Each download is in the audit log, since a backup holds
every voucher code and the accounts' password hashes.
"""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, send_file, url_for
from flask.typing import ResponseReturnValue

from hotspotd.backup import Kept, listing
from hotspotd.core import audit
from hotspotd.core.models import Role
from portal.operator.auth import actor, requires
from portal.operator.daemon import Refused, ask
from portal.web import context

bp = Blueprint("backups", __name__, url_prefix="/cadangan")


def _kept() -> list[Kept]:
    return listing(context.cfg())


@bp.get("")
@requires(Role.ADMIN)
def page(problem: str | None = None, status: int = 200) -> ResponseReturnValue:
    kept = _kept()
    made = request.args.get("made", "")
    fresh = next((k for k in kept if k.name == made), None)  # only a name from the listing
    html = render_template("backups.html", kept=kept, fresh=fresh, problem=problem,
                           tz=context.cfg().village.timezone)  # fmt: skip
    return html, status


@bp.post("")
@requires(Role.ADMIN)
def make() -> ResponseReturnValue:
    try:
        answer = ask("backup_now")
    except Refused as refused:
        return page(refused.message, 503)
    return redirect(url_for("backups.page", made=answer["name"]), code=303)


@bp.get("/<name>")
@requires(Role.ADMIN)
def download(name: str) -> ResponseReturnValue:
    found = next((k for k in _kept() if k.name == name), None)
    if found is None:
        abort(404)
    db = context.db()
    audit.record(db, context.now(), actor(), "backup.download", found.name)
    db.commit()
    response = send_file(found.path, mimetype="application/gzip", as_attachment=True,
                         download_name=found.name, max_age=0)  # fmt: skip
    response.headers["Cache-Control"] = "no-store"
    return response
