"""One hotspotd at a time: a lock file beside the control socket.

A second daemon would take over the socket and both would charge online time; a restore while
the daemon runs would have it write onto the restored database from its old memory. The kernel
releases an flock when its process ends, however it ends, so a crash never leaves it stale.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from hotspotd.errors import AdapterError, HotspotError


class AlreadyRunning(HotspotError):
    """Another hotspotd holds the lock."""


def hold_instance_lock(path: Path) -> IO[str]:
    """Take the daemon's lock file (flock, released by the kernel when the process ends).

    Returns the open file, which must stay open; raises AlreadyRunning, naming the other
    process, when another hotspotd holds it.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        f = open(path, "a+")
    except OSError as exc:
        raise AdapterError(f"cannot open the lock file {path}: {exc.strerror}") from None
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        other = f.read().strip() or "unknown"
        f.close()
        raise AlreadyRunning(
            f"another hotspotd is running (pid {other}, lock {path}); stop it first"
        ) from None
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f
