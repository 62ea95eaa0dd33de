"""The phones of scripts/bench_portal.py, run inside one client namespace (stdlib only).

Arguments: IPS START ROUNDS PORT OUTSIDE ROUTER SPREAD INDEX TOTAL NAMESPACES. Every phone
waits for its moment (START + SPREAD * its share), then does ROUNDS times: the captive probe to
an outside address (the router's DNAT answers: 302) and the portal's welcome page (200), each
on a new connection from its own address. Prints the latencies as one JSON object.

Real phones cost the router nothing to run, but these share its two cores; so they are a plain
selector loop over non-blocking sockets, about the least CPU a client can take per request.
Every socket has a deadline (10 s); the loop ends when every phone is done.
"""

from __future__ import annotations

import errno
import json
import selectors
import socket
import sys
import time

ips = sys.argv[1].split(",")
start, rounds, port = float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
outside, router = sys.argv[5], sys.argv[6]
spread, index, total, namespaces = (
    float(sys.argv[7]), int(sys.argv[8]), int(sys.argv[9]), int(sys.argv[10])
)  # fmt: skip

PROBE = (
    b"GET /generate_204 HTTP/1.1\r\nHost: connectivitycheck.gstatic.com\r\n"
    b"Connection: close\r\n\r\n"
)
WELCOME = (
    b"GET / HTTP/1.1\r\nHost: portal.lan:%d\r\nAccept: text/html\r\nAccept-Language: id\r\n"
    b"Connection: close\r\n\r\n" % port
)
STEPS = [("probe", (outside, 80), PROBE, b"302"), ("welcome", (router, port), WELCOME, b"200")]
TIMEOUT_S = 10.0
out: dict[str, list[float] | int] = {"probe": [], "welcome": [], "errors": 0}


class Phone:
    def __init__(self, ip: str, begin: float) -> None:
        self.ip, self.begin, self.step = ip, begin, 0
        self.sock: socket.socket | None = None
        self.data = bytearray()
        self.t0 = 0.0

    @property
    def done(self) -> bool:
        return self.step >= rounds * len(STEPS)

    def open(self, sel: selectors.BaseSelector) -> None:
        _kind, address, _request, _want = STEPS[self.step % len(STEPS)]
        self.t0 = time.monotonic()
        self.data.clear()
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.bind((self.ip, 0))
        err = s.connect_ex(address)
        if err not in (0, errno.EINPROGRESS):
            s.close()
            self.finish(sel, ok=False)
            return
        self.sock = s
        sel.register(s, selectors.EVENT_WRITE, self)

    def event(self, sel: selectors.BaseSelector, mask: int) -> None:
        assert self.sock is not None
        _kind, _address, request, _want = STEPS[self.step % len(STEPS)]
        if mask & selectors.EVENT_WRITE:
            if self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                self.finish(sel, ok=False)
                return
            self.sock.send(request)  # small: fits the empty send buffer at once
            sel.modify(self.sock, selectors.EVENT_READ, self)
            return
        try:
            chunk = self.sock.recv(65536)
        except OSError:
            self.finish(sel, ok=False)
            return
        if chunk:
            self.data += chunk
            return
        self.finish(sel, ok=True)

    def finish(self, sel: selectors.BaseSelector, ok: bool) -> None:
        kind, _address, _request, want = STEPS[self.step % len(STEPS)]
        if self.sock is not None:
            sel.unregister(self.sock)
            self.sock.close()
            self.sock = None
        if ok and self.data[9:12] == want:
            out[kind].append(time.monotonic() - self.t0)  # type: ignore[union-attr]
        else:
            out["errors"] += 1  # type: ignore[operator]
        self.step += 1
        if not self.done:
            self.open(sel)


def main() -> None:
    sel = selectors.DefaultSelector()
    # phone n of all comes back n/total of the way into the spread (Wi-Fi, DHCP in turn)
    waiting = sorted(
        (Phone(ip, start + spread * (index + k * namespaces) / total) for k, ip in enumerate(ips)),
        key=lambda p: p.begin,
    )
    phones = list(waiting)
    deadline = start + spread + rounds * len(STEPS) * TIMEOUT_S
    while time.monotonic() < deadline:
        now = time.monotonic()
        while waiting and waiting[0].begin <= now:
            waiting.pop(0).open(sel)
        if not waiting and all(p.done for p in phones):
            break
        timeout = max(0.0, waiting[0].begin - now) if waiting else 0.5
        for key, mask in sel.select(min(timeout, 0.5)):
            key.data.event(sel, mask)
        now = time.monotonic()
        for p in phones:  # a socket past its deadline is an error, and the phone goes on
            if p.sock is not None and now - p.t0 > TIMEOUT_S:
                p.finish(sel, ok=False)
    for p in phones:
        while not p.done:  # the whole run's deadline passed: what is left failed
            if p.sock is not None:
                sel.unregister(p.sock)
                p.sock.close()
                p.sock = None
            out["errors"] += 1  # type: ignore[operator]
            p.step += 1


main()
print(json.dumps(out))
