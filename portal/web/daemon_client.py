"""The control-socket client: how a surface asks the root daemon for a change.

No surface changes the kernel or writes the database itself: it asks the daemon for one of its
named operations (login, logout, top-up, ...) over the control socket, and an error answer
becomes a `Refusal` with a page for people (portal.web.errors).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app

from hotspotd.config import Config
from hotspotd.control import ControlClient, ControlError
from portal.web.errors import refusal_of


def init_app(app: Flask, cfg: Config) -> None:
    app.extensions["hotspot.control"] = ControlClient(cfg.daemon.control_socket, timeout=10)


def client() -> ControlClient:
    the_client: ControlClient = current_app.extensions["hotspot.control"]
    return the_client


def ask(op: str, form: str | None = None, **params: Any) -> Any:
    """One daemon operation; its error answer becomes a Refusal with a page for people."""
    try:
        return client().call(op, **params)
    except ControlError as exc:
        raise refusal_of(exc, form) from None
