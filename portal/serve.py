"""`hotspot-portal`: the portal under real WSGI servers, as the unprivileged user.

Plain HTTP (where the firewall sends every unauthorized phone's port 80) is served by
waitress on portal.address:port. With the operator's certificate configured, HTTPS (for the
RFC 8908 API and the user-portal-url) is served on https_port by cheroot, which does TLS
itself (waitress does not), in the same process and from the same app.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Any

from hotspotd import config as config_mod
from hotspotd.errors import HotspotError

log = logging.getLogger("hotspot.portal")


def https_server(app: Any, host: str, cfg: config_mod.Config) -> Any:
    from cheroot import wsgi
    from cheroot.ssl.builtin import BuiltinSSLAdapter

    p = cfg.portal
    server = wsgi.Server(
        (host, p.https_port), app, numthreads=min(p.threads, 8), server_name=p.hostname
    )
    server.ssl_adapter = BuiltinSSLAdapter(str(p.tls_cert), str(p.tls_key))
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hotspot-portal", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="config file (default $HOTSPOT_CONFIG or /etc/hotspot)")
    parser.add_argument("--host", help="listen here instead of portal.address (tests)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        cfg = config_mod.load(args.config)
        from portal import create_app

        app = create_app(cfg)
    except (HotspotError, OSError) as exc:
        print(f"hotspot-portal: {exc}", file=sys.stderr)
        return 1
    from waitress import create_server

    host = args.host or str(cfg.portal.address)
    http = create_server(
        app,
        host=host,
        port=cfg.portal.port,
        threads=cfg.portal.threads,
        ident="hotspot-portal",
        connection_limit=1000,
        channel_timeout=30,
        backlog=1024,
    )
    tls = None
    if cfg.portal.https:
        try:
            tls = https_server(app, host, cfg)
            tls.prepare()
        except (OSError, ValueError) as exc:
            print(f"hotspot-portal: cannot serve HTTPS: {exc}", file=sys.stderr)
            return 1
        threading.Thread(target=tls.serve, name="https", daemon=True).start()

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    log.info(
        "serving http://%s:%d/%s",
        host,
        cfg.portal.port,
        f" and https on {cfg.portal.https_port}" if tls else "",
    )
    print("ready", flush=True)
    http.run()
    if tls is not None:
        tls.stop()
    return 0


def run() -> None:
    sys.exit(main())
