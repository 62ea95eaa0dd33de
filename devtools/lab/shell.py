"""Running commands for the lab: on the host or inside a namespace, the lab's error, its
progress messages, and waiting for a server in a namespace to answer (TCP or DNS)."""

from __future__ import annotations

import subprocess
import sys


class LabError(Exception):
    """The lab could not be built; the message says which step."""


def run(
    *args: str, check: bool = True, timeout: float = 30, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """A command's output; `input` goes to its stdin (a secret never goes on a command line)."""
    proc = subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, check=False, input=input
    )
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def in_ns(ns: str, *args: str, check: bool = True, timeout: float = 30) -> str:
    return run("ip", "netns", "exec", ns, *args, check=check, timeout=timeout).stdout


def say(text: str) -> None:
    print(f"lab: {text}", file=sys.stderr, flush=True)


# -- waiting, from inside a namespace ------------------------------------------------------------

_PROBE_TCP = """
import socket, sys, time
end = time.monotonic() + float(sys.argv[3])
while time.monotonic() < end:
    try:
        socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=0.5).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
"""

_PROBE_DNS = """
import socket, sys, time
query = bytes.fromhex("abcd01000001000000000000") + b"\\x05probe\\x03lab\\x00\\x00\\x01\\x00\\x01"
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.3)
    try:
        s.sendto(query, (sys.argv[1], 53))
        s.recv(512)
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
    finally:
        s.close()
sys.exit(1)
"""


def wait_tcp(ns: str, host: str, port: int, what: str, seconds: float = 15) -> None:
    proc = run("ip", "netns", "exec", ns, sys.executable, "-c", _PROBE_TCP, host, str(port),
               str(seconds), check=False, timeout=seconds + 10)  # fmt: skip
    if proc.returncode != 0:
        raise LabError(f"{what} does not listen on {host}:{port} in {ns}")


def wait_udp_dns(ns: str, host: str, what: str, seconds: float = 10) -> None:
    proc = run("ip", "netns", "exec", ns, sys.executable, "-c", _PROBE_DNS, host, str(seconds),
               check=False, timeout=seconds + 10)  # fmt: skip
    if proc.returncode != 0:
        raise LabError(f"{what} does not answer DNS on {host} in {ns}")
