"""The phones of scripts/bench_portal.py, run inside one client namespace (stdlib only).

Arguments: IPS START ROUNDS PORT OUTSIDE ROUTER SPREAD INDEX TOTAL NAMESPACES. Every phone
waits for its moment (START + SPREAD * its share), then does ROUNDS times: the captive probe to
an outside address (the router's DNAT answers: 302) and the portal's welcome page (200), each
on a new connection from its own address. Prints the latencies as one JSON object.
"""

from __future__ import annotations

import asyncio
import json
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
REQUESTS = {"probe": (outside, 80, PROBE, b"302"), "welcome": (router, port, WELCOME, b"200")}
out: dict[str, list[float] | int] = {"probe": [], "welcome": [], "errors": 0}


async def one(ip: str, kind: str) -> None:
    host, p, request, want = REQUESTS[kind]
    t0 = time.monotonic()
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection(host, p, local_addr=(ip, 0)), 10)
        w.write(request)
        data = await asyncio.wait_for(r.read(), 10)
        w.close()
        if data[9:12] != want:
            raise ValueError(data[:40])
        out[kind].append(time.monotonic() - t0)  # type: ignore[union-attr]
    except (OSError, ValueError, TimeoutError):
        out["errors"] += 1  # type: ignore[operator]


async def phone(ip: str, share: float) -> None:
    # phone n of all comes back n/total of the way into the spread (Wi-Fi, DHCP in turn)
    await asyncio.sleep(max(0.0, start + spread * share - time.monotonic()))
    for _ in range(rounds):
        await one(ip, "probe")
        await one(ip, "welcome")


async def main() -> None:
    await asyncio.gather(*(phone(ip, (index + k * namespaces) / total) for k, ip in enumerate(ips)))


asyncio.run(main())
print(json.dumps(out))
