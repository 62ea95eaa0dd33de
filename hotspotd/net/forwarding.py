"""IPv4 forwarding of this network namespace: on when the kernel table is rebuilt, off with it."""

from __future__ import annotations

import logging

from hotspotd.errors import AdapterError

log = logging.getLogger("hotspotd")

IP_FORWARD = "/proc/sys/net/ipv4/ip_forward"


def set_forwarding(on: bool) -> None:
    """Switch IPv4 forwarding of this network namespace; AdapterError if the kernel says no."""
    want = "1" if on else "0"
    try:
        with open(IP_FORWARD, "r+") as f:
            if f.read().strip() != want:
                f.seek(0)
                f.write(want)
                log.info("IPv4 forwarding %s", "on" if on else "off")
    except OSError as exc:
        raise AdapterError(f"cannot set {IP_FORWARD}: {exc.strerror}") from None
