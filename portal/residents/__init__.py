"""The residents' portal: what a phone on the hotspot's Wi-Fi sees, and the edge in front of it.

Blueprints: `captive` (welcome, login, status, top-up, log out, language; the error pages),
`village` (the BUMDes market and the lessons), `api` (RFC 8908) and `health` (`/healthz`); their
templates are in templates/. In front of the Flask app, and of no other app, is the residents'
edge: `intercept` answers every request for another host (captive probes, the first page a
phone asked for) before Flask, `online` is the set of logged-in addresses, `originals` keeps
each phone's first URL for after login.
"""

from __future__ import annotations

from flask import Flask

from hotspotd.config import Config
from portal.residents import api, captive, health, village
from portal.residents.intercept import Intercept
from portal.residents.online import OnlineAddresses
from portal.residents.originals import OriginalUrls
from portal.residents.views import portal_url_of


def init_app(app: Flask, cfg: Config, *, online: OnlineAddresses, originals: OriginalUrls) -> None:
    """The residents' blueprints on `app`, and their edge in front of it."""
    app.register_blueprint(health.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(captive.bp)
    app.register_blueprint(village.bp)
    p = cfg.portal
    app.wsgi_app = Intercept(  # type: ignore[method-assign]
        app.wsgi_app,
        own_hosts=(p.hostname, str(p.address), "localhost", "127.0.0.1"),
        lan=cfg.network.lan_prefix,
        portal_url=portal_url_of(cfg, "/"),
        status_url=portal_url_of(cfg, "/status"),
        online=online,
        originals=originals,
    )
