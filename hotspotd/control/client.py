"""The one small client the portal and the CLI use to ask the daemon for something."""

from __future__ import annotations

import os
import socket
from typing import Any

from hotspotd.control.wire import ControlError, decode_answer, encode


def answers(path: str | os.PathLike[str], timeout: float = 2.0) -> bool:
    """Whether a hotspotd takes connections on this socket now (nothing is asked of it)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(os.fspath(path))
        except OSError:
            return False
    return True


class ControlClient:
    def __init__(self, path: str | os.PathLike[str], timeout: float = 10.0) -> None:
        self.path = str(path)
        self.timeout = timeout

    def call(self, op: str, **params: Any) -> Any:
        request = encode({"op": op, **params})
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
        return decode_answer(reply)


class OperatorClient(ControlClient):
    """A client for an operator's tools: every call names who asks (`actor`), for the audit."""

    def __init__(self, path: str | os.PathLike[str], actor: str, timeout: float = 10.0) -> None:
        super().__init__(path, timeout)
        self.actor = actor

    def call(self, op: str, **params: Any) -> Any:
        return super().call(op, actor=self.actor, **params)
