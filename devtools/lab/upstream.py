"""hs-net's web server, the lab's "internet": the OS captive probes answered as the real servers
answer them, a big download (`/big?bytes=N`: N zero bytes, at most 100 MB and 2 minutes, for
something to see on the operator's "online now"), and a page for every other host. Runs inside
hs-net as `python -m devtools.lab serve-upstream`."""

from __future__ import annotations

import http.server
import socketserver
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from devtools.lab.layout import GARDEN_HOST

BIG_PATH = "/big"
BIG_MAX_BYTES = 100_000_000
BIG_MAX_SECONDS = 120.0
CHUNK = 64 * 1024

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
            if path == BIG_PATH:
                self._big()
                return
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

        def _big(self) -> None:
            """Zero bytes as fast as the phone's plan lets them through, bounded in size and
            time (a slow phone gets a short file, never a server thread held for ever)."""
            asked = parse_qs(urlsplit(self.path).query).get("bytes", ["10000000"])[0]
            size = min(int(asked) if asked.isdigit() else 0, BIG_MAX_BYTES)
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            chunk, left = bytes(CHUNK), size
            deadline = time.monotonic() + BIG_MAX_SECONDS
            try:
                while left > 0 and time.monotonic() < deadline:
                    n = min(left, CHUNK)
                    self.wfile.write(chunk[:n])
                    left -= n
            except OSError:  # the phone went away, or was cut off
                pass
            self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            return

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    with Server(("0.0.0.0", port), Handler) as server:  # noqa: S104 - inside hs-net only
        server.serve_forever()
