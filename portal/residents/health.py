"""`/healthz`: whether the portal can reach a database at the schema this code needs."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import SQLAlchemyError

from hotspotd import schema
from hotspotd.errors import DatabaseNotReady

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    try:
        schema.require_current(current_app.extensions["hotspot.engine"])
    except DatabaseNotReady as exc:
        return jsonify(ok=False, reason=str(exc)), 503
    except SQLAlchemyError as exc:  # read-only, the portal cannot make a missing file
        first = str(exc.orig if getattr(exc, "orig", None) else exc).splitlines()[0]
        reason = f"the database cannot be opened ({first}): run `hotspotctl db upgrade`"
        return jsonify(ok=False, reason=reason), 503
    return jsonify(ok=True, schema=schema.head())
