"""hs-net's web server, the lab's "internet": the OS captive probes answered as the real servers
answer them, and a page for every other host. Runs inside hs-net as
`python -m devtools.lab serve-upstream`."""

from __future__ import annotations

import http.server
import socketserver
from typing import Any

from devtools.lab.layout import GARDEN_HOST

PROBE_ANSWERS: dict[str, tuple[int, str, str]] = {
    "/generate_204": (204, "", "text/plain"),
    "/gen_204": (204, "", "text/plain"),
    "/hotspot-detect.html": (
        200,
        "<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>",
        "text/html",
    ),
    "/connecttest.txt": (200, "Microsoft Connect Test", "text/plain"),
    "/canonical.html": (200, "<meta http-equiv='refresh' content='0;url=/'/>", "text/html"),
    "/success.txt": (200, "success\n", "text/plain"),
}


def upstream_page(host: str, path: str) -> str:
    if host == GARDEN_HOST:
        title, text = "Situs Desa Sukamaju", "Pasar BUMDes - terbuka tanpa voucher (walled garden)."
    else:
        title, text = "Berita Desa", "A page on the lab's internet."
    return (
        "<!doctype html><html lang='id'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{title}</title></head><body><h1>{title}</h1><p>{text}</p>"
        f"<p id='upstream'>UPSTREAM {host}{path}</p></body></html>"
    )


def serve_upstream(log_path: str, port: int = 80) -> None:
    """hs-net's web server: probe answers as the real servers give them, a page per host."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            host = (self.headers.get("Host") or "").split(":")[0].lower()
            path = self.path.split("?")[0]
            with open(log_path, "a", encoding="utf-8") as f:
                f.write(f"{self.client_address[0]} {host} {self.path}\n")
            if host != GARDEN_HOST and path in PROBE_ANSWERS:
                status, body, mimetype = PROBE_ANSWERS[path]
            else:
                status, body, mimetype = 200, upstream_page(host, self.path), "text/html"
            data = body.encode()
            self.send_response(status)
            if status != 204:
                self.send_header("Content-Type", f"{mimetype}; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if status != 204:
                self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    with Server(("0.0.0.0", port), Handler) as server:  # noqa: S104 - inside hs-net only
        server.serve_forever()
