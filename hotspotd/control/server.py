"""The control socket's server: a Unix socket that never trusts a peer to be quick or polite.

Lines are capped in size, reads time out, connections are capped in number, and whatever a
handler raises becomes an error answer, never a dead daemon. The peer's uid/gid/pid come from
SO_PEERCRED and are handed to the handler, which decides what that peer may ask.
"""

from __future__ import annotations

import contextlib
import grp
import logging
import os
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hotspotd.control.wire import (
    MAX_LINE,
    READ_TIMEOUT_S,
    ControlError,
    decode_request,
    encode,
    error_answer,
    refusal,
)
from hotspotd.errors import ClientError

log = logging.getLogger("hotspotd.control")

MAX_CONNECTIONS = 32


@dataclass(frozen=True)
class Peer:
    """Who is on the other end, as the kernel says (SO_PEERCRED), not as the peer says."""

    pid: int
    uid: int
    gid: int

    def __str__(self) -> str:
        return f"pid={self.pid} uid={self.uid} gid={self.gid}"


Handler = Callable[[str, Mapping[str, Any], Peer], Any]


def peer_of(sock: socket.socket) -> Peer:
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    return Peer(pid, uid, gid)


class _Connection(socketserver.BaseRequestHandler):
    """One peer: any number of request lines, each within a size cap and a time limit."""

    server: ControlServer
    request: socket.socket

    def handle(self) -> None:
        if not self.server.slots.acquire(blocking=False):
            self._send(refusal("busy", "too many connections"))
            return
        try:
            peer = peer_of(self.request)
            buffer = b""
            while True:
                line, buffer = self._read_line(buffer)
                if line is None:
                    return
                self._send(self.server.answer(line, peer))
        finally:
            self.server.slots.release()

    def _read_line(self, buffer: bytes) -> tuple[bytes | None, bytes]:
        """The next line, or None when the peer left, was too slow or sent too much."""
        deadline = time.monotonic() + READ_TIMEOUT_S
        while b"\n" not in buffer:
            if len(buffer) > MAX_LINE:
                self._send(refusal("too_large", "request too large"))
                return None, b""
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._send(refusal("timeout", "request too slow"))
                return None, b""
            self.request.settimeout(remaining)
            try:
                chunk = self.request.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return None, b""
            if not chunk:
                return None, b""
            buffer += chunk
        line, _, rest = buffer.partition(b"\n")
        if len(line) > MAX_LINE:
            self._send(refusal("too_large", "request too large"))
            return None, b""
        return line, rest

    def _send(self, answer: Mapping[str, Any]) -> None:
        data = encode(answer)
        with contextlib.suppress(OSError):
            self.request.settimeout(READ_TIMEOUT_S)
            self.request.sendall(data)


class ControlServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, path: Path, handler: Handler, *, group: str | None = "hotspot") -> None:
        self.path = Path(path)
        self.handler = handler
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a socket left by a killed daemon
        old_umask = os.umask(0o117)
        try:
            super().__init__(str(self.path), _Connection)
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o660)
        if group is not None:
            try:
                os.chown(self.path, -1, grp.getgrnam(group).gr_gid)
            except KeyError:
                log.warning("group %r does not exist; control socket stays root-only", group)
            except PermissionError:
                log.warning("cannot give the control socket to group %r", group)
        self._thread: threading.Thread | None = None

    def answer(self, line: bytes, peer: Peer) -> dict[str, Any]:
        request = decode_request(line)
        if isinstance(request, dict):
            return request
        op, params = request
        try:
            return {"ok": True, "result": self.handler(op, params, peer)}
        except (ClientError, ControlError) as exc:
            return error_answer(exc)
        except Exception:
            log.exception("control operation %r failed (peer %s)", op, peer)
            return error_answer(RuntimeError())

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, name="control", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
