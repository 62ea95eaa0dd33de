"""The web layer every surface of the portal shares.

A surface (portal.residents today; the operator's UI and reports later, each its own app) is a
set of Flask blueprints with its own templates and error handlers, on top of this:

- `context`: the config, the request's database session, the clock;
- `security`: CSRF tokens, security headers, where a redirect may go;
- `i18n`: Babel, the languages and the formats (Rupiah, durations, local times);
- `errors`: `Refusal`, and the page for each error of the daemon;
- `daemon_client`: the control socket to the root daemon.
"""

from __future__ import annotations

from flask import Flask

from portal.web import context, i18n, security


def init_app(app: Flask) -> None:
    """The shared layer on an app: a database session per request, Babel, CSRF and headers."""
    context.init_app(app)
    i18n.init_app(app)
    security.init_app(app)
