"""`hotspot-portal`: the portal under real WSGI servers, as the unprivileged user.

Plain HTTP (where the firewall sends every unauthorized phone's port 80) is served by
waitress on portal.address:port. With the operator's certificate configured, HTTPS (for the
RFC 8908 API and the user-portal-url) is served on https_port by cheroot, which does TLS
itself (waitress does not), from the same app, in the first worker.

One Python process uses one core (the GIL), and after a power cut 200 phones arrive at once,
so the portal pre-forks `portal.workers` processes (gunicorn's model, done here in a few lines
because waitress has none): the parent builds the app (imports, secret key) and binds the
listening socket, then forks; every worker accepts from that socket. The parent only watches:
a worker that dies is started again, SIGTERM stops them all. What workers must share lives in
the database or in portal.runtime_dir (portal.residents.originals).
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

from hotspotd import config as config_mod
from hotspotd.errors import HotspotError
from portal.web import i18n

log = logging.getLogger("hotspot.portal")


MAX_HEADER_BYTES = 16 * 1024  # a phone's request headers are a few hundred bytes


def keep_buffers_off_disk(cfg: config_mod.Config) -> None:
    """Any temporary file of this process goes to the runtime directory (tmpfs under systemd),
    never to /tmp on the SD card that holds the database."""
    tmp = cfg.portal.runtime_dir / "tmp"
    try:
        tmp.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise HotspotError(f"portal.runtime_dir: cannot make {tmp}: {exc}") from None
    tempfile.tempdir = str(tmp)


def https_server(app: Any, host: str, cfg: config_mod.Config) -> Any:
    from cheroot import wsgi
    from cheroot.ssl.builtin import BuiltinSSLAdapter

    p = cfg.portal
    server = wsgi.Server(
        (host, p.https_port), app, numthreads=min(p.threads, 8), server_name=p.hostname
    )
    server.ssl_adapter = BuiltinSSLAdapter(str(p.tls_cert), str(p.tls_key))
    server.max_request_body_size = int(app.config["MAX_CONTENT_LENGTH"])
    server.max_request_header_size = MAX_HEADER_BYTES
    return server


def warm(app: Any, cfg: config_mod.Config) -> None:
    """Compile every template and make the welcome page in each language before serving.

    After a power cut the phones come back seconds after the router does; the first of them
    should not wait while the portal compiles templates and reads the plans.
    """
    for name in app.jinja_env.list_templates(extensions=["html"]):
        app.jinja_env.get_template(name)
    client = app.test_client()
    for lang in i18n.LANGUAGES:
        answer = client.get("/", headers={"Host": cfg.portal.hostname, "Accept-Language": lang})
        if answer.status_code != 200:
            log.warning("warming up: the welcome page answered %s", answer.status)


def listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    return sock


def serve(app: Any, cfg: config_mod.Config, host: str, sock: socket.socket, *, https: bool,
          ready: Callable[[], None]) -> int:  # fmt: skip
    """One worker: waitress on the shared socket (and cheroot for HTTPS if asked) until SIGTERM."""
    from waitress import create_server

    body_limit = int(app.config["MAX_CONTENT_LENGTH"])
    http = create_server(
        app,
        sockets=[sock],
        threads=cfg.portal.threads,
        ident="hotspot-portal",
        connection_limit=1000,
        channel_timeout=30,
        backlog=1024,
        # waitress's own limits, as tight as Flask's: its defaults (1 GiB of body, spooled to
        # a temporary file past 512 KB) would let one unfinished POST fill the SD card.
        max_request_body_size=body_limit,
        max_request_header_size=MAX_HEADER_BYTES,
        inbuf_overflow=body_limit + MAX_HEADER_BYTES,
    )
    tls = None
    if https:
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
    signal.signal(signal.SIGINT, stop)
    ready()
    try:
        http.run()
    except SystemExit:
        pass
    finally:
        if tls is not None:
            tls.stop()
    return 0


class Workers:
    """The parent of the pre-forked workers."""

    RESTARTS = 5  # more than this many deaths within a minute: something is broken, stop
    READY_S = 120.0

    def __init__(self, app: Any, cfg: config_mod.Config, host: str, sock: socket.socket) -> None:
        self.app, self.cfg, self.host, self.sock = app, cfg, host, sock
        self.children: dict[int, int] = {}  # pid -> worker index
        self.deaths: list[float] = []
        self.stopping = False

    def spawn(self, index: int, ready_fd: int | None) -> None:
        pid = os.fork()
        if pid:
            self.children[pid] = index
            return
        code = 1
        try:  # the worker: never returns into the parent's code
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            self.app.extensions["hotspot.engine"].dispose(close=False)
            warm(self.app, self.cfg)

            def ready() -> None:
                if ready_fd is not None:
                    os.write(ready_fd, b"r")
                    os.close(ready_fd)

            code = serve(self.app, self.cfg, self.host, self.sock, https=self.cfg.portal.https
                         and index == 0, ready=ready)  # fmt: skip
        except BaseException:
            log.exception("worker %d failed", index)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

    def stop(self, signum: int, _frame: object) -> None:
        self.stopping = True
        for pid in self.children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        read_fd, write_fd = os.pipe()
        for index in range(self.cfg.portal.workers):
            self.spawn(index, write_fd)
        os.close(write_fd)
        if not self._await_ready(read_fd):
            self.stop(signal.SIGTERM, None)
            self._reap_all()
            print("hotspot-portal: the workers did not start", file=sys.stderr)
            return 1
        log.info("serving http://%s:%d/ with %d workers%s", self.host, self.cfg.portal.port,
                 len(self.children), f", https on {self.cfg.portal.https_port}"
                 if self.cfg.portal.https else "")  # fmt: skip
        print("ready", flush=True)
        while self.children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            index = self.children.pop(pid, -1)
            if index < 0 or self.stopping:
                continue
            log.warning("worker %d (pid %d) ended (status %d); starting it again",
                        index, pid, status)  # fmt: skip
            now = time.monotonic()
            self.deaths = [t for t in self.deaths if now - t < 60] + [now]
            if len(self.deaths) > self.RESTARTS:
                log.error("workers keep dying: stopping")
                self.stop(signal.SIGTERM, None)
                self._reap_all()
                return 1
            self.spawn(index, None)
        return 0

    def _await_ready(self, fd: int) -> bool:
        want, got = len(self.children), 0
        deadline = time.monotonic() + self.READY_S
        try:
            while got < want:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                if not select.select([fd], [], [], min(left, 0.2))[0]:
                    pid, _status = os.waitpid(-1, os.WNOHANG)
                    if pid:  # a worker died before it was ready (e.g. a bad certificate)
                        self.children.pop(pid, None)
                        return False
                    continue
                data = os.read(fd, want)
                if not data:  # every writer gone: a worker died before it was ready
                    return False
                got += len(data)
            return True
        finally:
            os.close(fd)

    def _reap_all(self) -> None:
        deadline = time.monotonic() + 10
        while self.children and time.monotonic() < deadline:
            try:
                pid, _status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid:
                self.children.pop(pid, None)
            else:
                time.sleep(0.05)
        for pid in self.children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hotspot-portal", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="config file (default $HOTSPOT_CONFIG or /etc/hotspot)")
    parser.add_argument("--host", help="listen here instead of portal.address (tests)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        cfg = config_mod.load(args.config)
        from portal.app import create_app

        app = create_app(cfg)
        keep_buffers_off_disk(cfg)  # before the workers are forked: they inherit it
        host = args.host or str(cfg.portal.address)
        sock = listen(host, cfg.portal.port)
    except (HotspotError, OSError) as exc:
        print(f"hotspot-portal: {exc}", file=sys.stderr)
        return 1
    if cfg.portal.workers > 1:
        return Workers(app, cfg, host, sock).run()
    try:
        warm(app, cfg)
    except (HotspotError, OSError) as exc:
        print(f"hotspot-portal: {exc}", file=sys.stderr)
        return 1

    def ready() -> None:
        log.info("serving http://%s:%d/%s", host, cfg.portal.port,
                 f" and https on {cfg.portal.https_port}" if cfg.portal.https else "")  # fmt: skip
        print("ready", flush=True)

    return serve(app, cfg, host, sock, https=cfg.portal.https, ready=ready)


def run() -> None:
    sys.exit(main())
