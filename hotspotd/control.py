"""The control socket: newline-delimited JSON over a Unix socket, named operations only.

A request is one JSON object on one line: `{"op": "login", "ip": "10.66.0.11", "code": "..."}`.
An answer is one line: `{"ok": true, "result": {...}}` or
`{"ok": false, "error": "<stable code>", "reason": "<stable reason>", "message": "<for people>"}`;
callers branch on `error` and `reason`, never on the message.

The server never trusts a peer to be quick or polite: lines are capped in size, reads time out,
connections are capped in number, and whatever a handler raises becomes an error answer, never
a dead daemon. The peer's uid/gid/pid come from SO_PEERCRED and are handed to the handler, so
operator actions are logged with who asked.
"""

from __future__ import annotations

import contextlib
import grp
import json
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

from hotspotd.errors import ClientError, HotspotError, VoucherRejected

log = logging.getLogger("hotspotd.control")

MAX_LINE = 16 * 1024
READ_TIMEOUT_S = 5.0
MAX_CONNECTIONS = 32


@dataclass(frozen=True)
class Peer:
    pid: int
    uid: int
    gid: int

    def __str__(self) -> str:
        return f"pid={self.pid} uid={self.uid} gid={self.gid}"


Handler = Callable[[str, Mapping[str, Any], Peer], Any]


class ControlError(HotspotError):
    """An error answer from the daemon, as the client sees it."""

    def __init__(
        self,
        code: str,
        message: str,
        extra: Mapping[str, Any] | None = None,
        *,
        reason: str | None = None,
    ) -> None:
        self.code = code
        self.reason = reason or code
        self.message = message
        self.extra = dict(extra or {})
        super().__init__(f"{message} ({code})")


def error_answer(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, VoucherRejected):
        return {"ok": False, "error": exc.code, "reason": exc.reason, "message": str(exc),
                "state": exc.state}  # fmt: skip
    if isinstance(exc, ClientError):
        return {"ok": False, "error": exc.code, "reason": exc.reason, "message": str(exc)}
    if isinstance(exc, ControlError):
        return {"ok": False, "error": exc.code, "reason": exc.reason, "message": exc.message,
                **exc.extra}  # fmt: skip
    return {
        "ok": False,
        "error": "internal",
        "reason": "internal",
        "message": "the daemon could not do that; see its log",
    }


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
            self._send({"ok": False, "error": "busy", "message": "too many connections"})
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
                self._send({"ok": False, "error": "too_large", "message": "request too large"})
                return None, b""
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._send({"ok": False, "error": "timeout", "message": "request too slow"})
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
            self._send({"ok": False, "error": "too_large", "message": "request too large"})
            return None, b""
        return line, rest

    def _send(self, answer: Mapping[str, Any]) -> None:
        data = json.dumps(answer, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
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
        try:
            request = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return {"ok": False, "error": "bad_json", "message": "not a JSON line"}
        if not isinstance(request, dict):
            return {"ok": False, "error": "bad_request", "message": "expected a JSON object"}
        op = request.pop("op", None)
        if not isinstance(op, str):
            return {"ok": False, "error": "bad_request", "message": "missing 'op'"}
        try:
            return {"ok": True, "result": self.handler(op, request, peer)}
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


class ControlClient:
    """The one small client the portal and the CLI use to ask the daemon for something."""

    def __init__(self, path: str | os.PathLike[str], timeout: float = 10.0) -> None:
        self.path = str(path)
        self.timeout = timeout

    def call(self, op: str, **params: Any) -> Any:
        request = json.dumps({"op": op, **params}, separators=(",", ":")).encode() + b"\n"
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                sock.connect(self.path)
                sock.sendall(request)
                reply = b""
                while not reply.endswith(b"\n"):
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    reply += chunk
        except FileNotFoundError:
            raise ControlError("unavailable", f"hotspotd is not running (no {self.path})") from None
        except PermissionError:
            raise ControlError("denied", f"no permission to use {self.path}") from None
        except (ConnectionError, TimeoutError, OSError) as exc:
            raise ControlError("unavailable", f"cannot reach hotspotd: {exc}") from None
        try:
            answer = json.loads(reply)
        except json.JSONDecodeError:
            raise ControlError("bad_answer", "hotspotd gave an unreadable answer") from None
        if not answer.get("ok"):
            extra = {
                k: v for k, v in answer.items() if k not in ("ok", "error", "reason", "message")
            }
            raise ControlError(
                answer.get("error", "error"),
                answer.get("message", ""),
                extra,
                reason=answer.get("reason"),
            )
        return answer.get("result")
