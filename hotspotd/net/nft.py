"""The runners that execute nft scripts, each script one transaction.

This module owns how a script reaches the kernel. Commands go to libnftables through ctypes,
one context kept open, when the library loads (the kernel's deferred clean-up then runs once
per batch, not per process: deleting one element of 5,000 costs ~0.2 ms instead of 13-17 ms
through the `nft` command); otherwise they are piped to `nft -f -`. Both take the same text,
built only from validated values (`IPv4Address`, normalized MACs, checked interface names and
integers), so no input can inject a command. A failure is an `AdapterError` carrying nft's
message, shortened.
"""

from __future__ import annotations

import ctypes
import subprocess
import threading
from typing import Protocol

from hotspotd.errors import AdapterError


class NftRunner(Protocol):
    """Runs one nft script as one transaction and returns what nft printed."""

    def run(self, script: str) -> str: ...

    def close(self) -> None: ...


class LibNftables:
    """libnftables through ctypes, one context for the runner's life.

    Debian's python3-nftables is the same thin wrapper but is built for the system Python
    only; loading the C library directly works from any interpreter or venv.
    """

    def __init__(self, soname: str = "libnftables.so.1") -> None:
        try:
            lib = ctypes.CDLL(soname)
        except OSError as exc:
            raise AdapterError(f"cannot load {soname}: {exc}") from exc
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_ctx_free.restype = None
        lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
        for name in ("nft_ctx_buffer_output", "nft_ctx_buffer_error"):
            getattr(lib, name).restype = ctypes.c_int
            getattr(lib, name).argtypes = [ctypes.c_void_p]
        for name in ("nft_ctx_get_output_buffer", "nft_ctx_get_error_buffer"):
            getattr(lib, name).restype = ctypes.c_char_p
            getattr(lib, name).argtypes = [ctypes.c_void_p]
        lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        ctx = lib.nft_ctx_new(0)
        if not ctx:
            raise AdapterError("nft_ctx_new failed")
        if lib.nft_ctx_buffer_output(ctx) != 0 or lib.nft_ctx_buffer_error(ctx) != 0:
            lib.nft_ctx_free(ctx)
            raise AdapterError("cannot buffer libnftables output")
        self._lib = lib
        self._ctx: int | None = ctx
        self._lock = threading.Lock()

    def run(self, script: str) -> str:
        with self._lock:
            if self._ctx is None:
                raise AdapterError("libnftables context already closed")
            rc = self._lib.nft_run_cmd_from_buffer(self._ctx, script.encode())
            out: bytes | None = self._lib.nft_ctx_get_output_buffer(self._ctx)
            err: bytes | None = self._lib.nft_ctx_get_error_buffer(self._ctx)
        if rc != 0:
            raise AdapterError(f"nft failed: {_brief((err or b'').decode(errors='replace'))}")
        return (out or b"").decode()

    def close(self) -> None:
        with self._lock:
            if self._ctx is not None:
                self._lib.nft_ctx_free(self._ctx)
                self._ctx = None


class NftCommand:
    """The `nft` program, one process per script (`nft -f -`): slower, but needs no library."""

    def __init__(self, program: str = "nft", timeout: float = 30.0) -> None:
        self._program = program
        self._timeout = timeout

    def run(self, script: str) -> str:
        try:
            proc = subprocess.run(
                [self._program, "-f", "-"],
                input=script.encode(),
                capture_output=True,
                timeout=self._timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise AdapterError(f"cannot run {self._program}: {exc}") from exc
        if proc.returncode != 0:
            raise AdapterError(f"nft failed: {_brief(proc.stderr.decode(errors='replace'))}")
        return proc.stdout.decode()

    def close(self) -> None:
        """Nothing is held between calls."""


def _brief(message: str, limit: int = 2000) -> str:
    """nft echoes the failing command, which can hold 5,000 elements: keep logs readable."""
    text = message.strip()
    return text if len(text) <= limit else f"{text[:limit]} ... ({len(text) - limit} more chars)"


def default_runner() -> NftRunner:
    """libnftables when it loads, else the `nft` program."""
    try:
        return LibNftables()
    except AdapterError:
        return NftCommand()
