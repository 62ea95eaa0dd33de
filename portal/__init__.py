"""The portal: the web apps in front of hotspotd, one folder per surface.

- `app`: `create_app()`, the residents' portal that `hotspot-portal` serves (`serve`);
- `web/`: what every surface shares (security, i18n, errors, the daemon's socket, context);
- `residents/`: the residents' pages, their templates, and the edge in front of them;
- `static/`, `translations/`, `babel.cfg`: shared by every surface.

Nothing happens at import time, and importing this package imports nothing else.
"""
