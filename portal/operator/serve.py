"""`hotspot-operator`: the operator's UI over HTTPS, one light process as its own Unix user.

An operator UI has one or two users at a time: one process, a few threads (cheroot, which does
TLS itself), no worker pool. Without a certificate it does not start: passwords never cross
the open Wi-Fi in clear; plain HTTP on its port is answered with a redirect to https://.
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

log = logging.getLogger("hotspot.operator")
THREADS = 4
MAX_HEADER_BYTES = 16 * 1024


def server(app: Any, cfg: config_mod.Config, host: str) -> Any:
    from cheroot import wsgi

    from portal.operator.plain_http import RedirectingSSLAdapter

    pair = cfg.operator.certificate(cfg.portal)
    if pair is None:
        raise HotspotError(
            "the operator UI needs a certificate: set operator.tls_cert and operator.tls_key "
            "(or portal.tls_cert/tls_key); scripts/install makes a self-signed one"
        )
    cert, key = pair
    srv = wsgi.Server((host, cfg.operator.port), app, numthreads=THREADS,
                      server_name=cfg.portal.hostname)  # fmt: skip
    # plain http:// on this port is sent to https:// (portal.operator.plain_http)
    srv.ssl_adapter = RedirectingSSLAdapter(str(cert), str(key), fallback_host=cfg.portal.hostname)
    srv.max_request_body_size = int(app.config["MAX_CONTENT_LENGTH"])
    srv.max_request_header_size = MAX_HEADER_BYTES
    return srv


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hotspot-operator", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="config file (default $HOTSPOT_CONFIG or /etc/hotspot)")
    parser.add_argument("--host", help="listen here instead of portal.address (tests)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        cfg = config_mod.load(args.config)
        from portal.operator.app import create_operator_app

        app = create_operator_app(cfg)
        host = args.host or str(cfg.portal.address)
        srv = server(app, cfg, host)
        srv.prepare()
    except (HotspotError, OSError) as exc:
        print(f"hotspot-operator: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threading.Thread(target=srv.serve, name="https", daemon=True).start()
    log.info("serving https://%s:%d/", host, cfg.operator.port)
    print("ready", flush=True)
    stop.wait()
    srv.stop()
    return 0


def run() -> None:
    sys.exit(main())
