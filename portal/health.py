"""`/healthz`: whether the portal can reach a database at the schema this code needs."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

from hotspotd import schema
from hotspotd.errors import DatabaseNotReady

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    try:
        schema.require_current(current_app.extensions["hotspot.engine"])
    except DatabaseNotReady as exc:
        return jsonify(ok=False, reason=str(exc)), 503
    return jsonify(ok=True, schema=schema.head())
