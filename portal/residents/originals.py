"""The URL each device first asked for, kept on the server until it logs in.

The portal runs as several worker processes: the redirect that saw the URL and the login that
goes back to it are often answered by different ones. So the URLs are small files in the
portal's runtime directory (tmpfs, `/run/hotspot-portal` under systemd), one per address,
written whole and renamed into place, so a reader never sees half a URL. They are kept
`ttl_s` (30 minutes) and swept when there are more than `limit` of them. A file's age is on
the monotonic clock (set as its mtime; the runtime directory does not outlive a boot), so a
jump of the wall clock neither keeps a URL for hours nor drops it at once.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path

from hotspotd.errors import HotspotError

MAX_BYTES = 4096


class OriginalUrls:
    """One URL per device address, shared by every worker; never in a parameter."""

    def __init__(
        self,
        directory: Path,
        limit: int = 4096,
        ttl_s: float = 1800.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.dir = directory / "originals"
        self.limit, self.ttl_s = limit, ttl_s
        self.clock = clock
        self._writes = 0

    def prepare(self) -> None:
        """Make the directory (mode 0700); a clear error if it cannot be."""
        try:
            self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not os.access(self.dir, os.W_OK | os.X_OK):
                raise PermissionError(f"cannot write to {self.dir}")
        except OSError as exc:
            raise HotspotError(
                f"portal.runtime_dir: cannot keep the phones' first URLs in {self.dir}: {exc}"
            ) from None

    def _path(self, ip: IPv4Address | str) -> Path:
        return self.dir / str(IPv4Address(str(ip)))  # a plain dotted quad: no path tricks

    def remember(self, ip: IPv4Address | str, url: str) -> None:
        data = url.encode()
        if len(data) > MAX_BYTES:
            return
        final = self._path(ip)
        temp = final.with_name(f".{final.name}.{os.getpid()}.{threading.get_ident()}")
        try:
            self._write(temp, final, data)
        except FileNotFoundError:  # the directory went (tmpfs cleaned): make it again, once
            self.prepare()
            self._write(temp, final, data)
        self._writes += 1
        if self._writes % 256 == 0:
            self.sweep()

    def _write(self, temp: Path, final: Path, data: bytes) -> None:
        temp.write_bytes(data)
        stamp = self.clock()
        os.utime(temp, (stamp, stamp))
        os.replace(temp, final)

    def take(self, ip: IPv4Address | str) -> str | None:
        """The URL, removed: a later login of the same phone goes to its status page."""
        url = self.peek(ip)
        with contextlib.suppress(FileNotFoundError):
            self._path(ip).unlink()
        return url

    def peek(self, ip: IPv4Address | str) -> str | None:
        path = self._path(ip)
        try:
            with path.open("rb") as f:
                age = self.clock() - os.fstat(f.fileno()).st_mtime
                data = f.read(MAX_BYTES + 1)
        except FileNotFoundError:
            return None
        if age > self.ttl_s or len(data) > MAX_BYTES:
            return None
        try:
            return data.decode()
        except UnicodeDecodeError:
            return None

    def sweep(self) -> int:
        """Remove what is past its age, then the oldest beyond `limit`; how many went."""
        entries: list[tuple[float, Path]] = []
        with contextlib.suppress(FileNotFoundError), os.scandir(self.dir) as it:
            for entry in it:
                with contextlib.suppress(FileNotFoundError):
                    entries.append((entry.stat().st_mtime, Path(entry.path)))
        entries.sort()
        now = self.clock()
        doomed = [p for m, p in entries if now - m > self.ttl_s]
        alive = len(entries) - len(doomed)
        if alive > self.limit:
            doomed += [p for m, p in entries if now - m <= self.ttl_s][: alive - self.limit]
        for path in doomed:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        return len(doomed)
