"""RFC 8908 Captive Portal API: what DHCP option 114 points phones to."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response
from flask.typing import ResponseReturnValue

from portal.residents.views import device_ip, https_url, portal_url, status_of

bp = Blueprint("api", __name__)


@bp.get("/api/captive")
def captive() -> ResponseReturnValue:
    st = status_of(device_ip())
    body: dict[str, Any] = {
        "captive": st is None,
        "user-portal-url": https_url("/"),
        "venue-info-url": portal_url("/"),
    }
    if st is not None:
        if st.seconds_left is not None:
            body["seconds-remaining"] = st.seconds_left
        if st.data_left is not None:
            body["bytes-remaining"] = st.data_left
        body["can-extend-session"] = st.session.voucher is not None  # a top-up card
    response = Response(json.dumps(body), mimetype="application/captive+json")
    response.headers["Cache-Control"] = "private"
    return response
