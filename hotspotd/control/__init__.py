"""The control socket: the daemon's only door, named operations over a Unix socket.

`wire` is the line format, `server` the socket that reads it (size caps, time limits, the
peer's SO_PEERCRED identity), `client` the caller's side, and `ops` the table of operations:
name → parameters → who may call it → the core call.
"""

from __future__ import annotations

from hotspotd.control.client import ControlClient
from hotspotd.control.wire import ControlError

__all__ = ["ControlClient", "ControlError"]
