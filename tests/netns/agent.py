"""Traffic helper run inside the test namespaces (`ip netns exec NS python agent.py ...`).

Servers (upstream "internet", portal stub, resolvers) and clients (phones) in one stdlib-only
file. Every server exits by itself after `--lifetime` seconds and every client loop is bounded
in count and time, so a crashed test run leaves nothing running for long. Clients print one
JSON object (or one per line for `hold`) so the tests can assert on what really happened.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import http.server
import json
import select
import socket
import socketserver
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import Any

CHUNK = 64 * 1024


def log_line(path: str, text: str) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(text + "\n")


def error_name(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, ConnectionResetError):
        return "reset"
    if isinstance(exc, OSError) and exc.errno is not None:
        return errno.errorcode.get(exc.errno, str(exc.errno))
    return type(exc).__name__


def meter(sock: socket.socket, warmup: float, window: float) -> float:
    """Steady-state goodput in bit/s: bytes between the first arrival after `warmup` and the
    last within the window, over the time between them. Offloads let HTB release 64 KB at a
    time, so counting whole bursts between two arrivals is exact where a fixed window is not."""
    start = time.monotonic()
    first: tuple[float, int] | None = None
    last: tuple[float, int] | None = None
    total = 0
    sock.settimeout(2)
    for _ in range(10**7):
        data = sock.recv(CHUNK)
        now = time.monotonic() - start
        if not data or now > warmup + window:
            break
        total += len(data)
        if now >= warmup:
            if first is None:
                first = (now, total)
            last = (now, total)
    if first is None or last is None or last[0] <= first[0]:
        return 0.0
    return (last[1] - first[1]) * 8 / (last[0] - first[0])


# -- servers ------------------------------------------------------------------------------------


def serve_http(port: int, body: str, log: str, lifetime: float) -> None:
    payload = body.encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            log_line(log, f"{self.client_address[0]} {self.path}")
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler)
    server.daemon_threads = True
    threading.Timer(lifetime, server.shutdown).start()
    print("ready", flush=True)
    server.serve_forever(poll_interval=0.2)


class TcpHandler(socketserver.StreamRequestHandler):
    """First line says what to do: SEND n | SINK | ECHO | FLOOD seconds | METER warmup window."""

    log = ""

    def handle(self) -> None:
        log_line(self.log, f"{self.client_address[0]}")
        self.connection.settimeout(60)
        command = self.rfile.readline(100).decode().split()
        if not command:
            return
        if command[0] == "SEND":
            left = int(command[1])
            block = b"x" * CHUNK
            while left > 0:
                n = min(left, CHUNK)
                self.wfile.write(block[:n])
                left -= n
        elif command[0] == "SINK":
            total = 0
            for _ in range(10**7):
                data = self.rfile.read1(CHUNK)
                if not data:
                    break
                total += len(data)
            self.wfile.write(f"{total}\n".encode())
        elif command[0] == "FLOOD":
            block = b"f" * CHUNK
            end = time.monotonic() + min(float(command[1]), 60.0)
            while time.monotonic() < end:
                self.wfile.write(block)
        elif command[0] == "METER":
            self.wfile.write(
                f"{meter(self.connection, float(command[1]), float(command[2]))}\n".encode()
            )
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            drain_until = time.monotonic() + 10
            while time.monotonic() < drain_until and self.connection.recv(CHUNK):
                pass
        elif command[0] == "ECHO":
            for _ in range(10**5):
                line = self.rfile.readline(1000)
                if not line:
                    break
                self.wfile.write(line)
                self.wfile.flush()


class Tcp4(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class Tcp6(Tcp4):
    address_family = socket.AF_INET6

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        super().server_bind()


def serve_tcp(port: int, log: str, lifetime: float) -> None:
    TcpHandler.log = log
    servers: list[socketserver.BaseServer] = [Tcp4(("0.0.0.0", port), TcpHandler)]
    try:
        servers.append(Tcp6(("::", port), TcpHandler))
    except OSError:
        pass  # no IPv6 in this namespace
    for server in servers:
        threading.Thread(target=server.serve_forever, args=(0.2,), daemon=True).start()
    print("ready", flush=True)
    time.sleep(lifetime)


def serve_dns(port: int, log: str, lifetime: float) -> None:
    """Answers any datagram, over IPv4 and IPv6: enough to tell whether a query got through."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", port))
    socks = [sock]
    try:
        sock6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        sock6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock6.bind(("::", port))
        socks.append(sock6)
    except OSError:
        pass  # no IPv6 in this namespace
    print("ready", flush=True)
    deadline = time.monotonic() + lifetime
    while time.monotonic() < deadline:
        ready, _, _ = select.select(socks, [], [], 0.5)
        for s in ready:
            data, peer = s.recvfrom(2048)
            log_line(log, peer[0].split("%")[0])
            s.sendto(b"ANSWER:" + data, peer)


# -- clients ------------------------------------------------------------------------------------


def family_of(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def client_http(url: str, timeout: float) -> dict[str, Any]:
    start = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read(10_000).decode(errors="replace")
        return {"ok": True, "body": body, "elapsed": time.monotonic() - start}
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        name = error_name(reason) if isinstance(reason, BaseException) else str(reason)
        return {"ok": False, "error": name, "elapsed": time.monotonic() - start}


def client_connect(host: str, port: int, timeout: float) -> dict[str, Any]:
    start = time.monotonic()
    sock = socket.socket(family_of(host), socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect((host, port))
        result = "connected"
    except OSError as exc:
        result = error_name(exc)
    finally:
        sock.close()
    return {"result": result, "elapsed": time.monotonic() - start}


def client_dns(host: str, port: int, timeout: float) -> dict[str, Any]:
    """One query; host may be IPv6, link-local with its scope too (fe80::1%eth0)."""
    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.settimeout(timeout)
    try:
        sock.connect(address)
        sock.send(b"\x12\x34query")
        data = sock.recv(2048)
        return {"answer": data.startswith(b"ANSWER:")}
    except OSError as exc:
        return {"answer": False, "error": error_name(exc)}
    finally:
        sock.close()


def client_send(host: str, port: int, count: int, timeout: float) -> dict[str, Any]:
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(b"SINK\n")
        block = b"y" * CHUNK
        left = count
        while left > 0:
            n = min(left, CHUNK)
            sock.sendall(block[:n])
            left -= n
        sock.shutdown(socket.SHUT_WR)
        reply = sock.makefile().readline()
    return {"sent": count, "server_count": int(reply)}


def client_recv(host: str, port: int, count: int, timeout: float) -> dict[str, Any]:
    total = 0
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(f"SEND {count}\n".encode())
        for _ in range(10**7):
            data = sock.recv(CHUNK)
            if not data:
                break
            total += len(data)
    return {"received": total}


def client_goodput(host: str, port: int, direction: str, warmup: float, window: float) -> float:
    """TCP goodput in bit/s as the receiving end counts it, down (we receive) or up."""
    with socket.create_connection((host, port), timeout=5) as sock:
        if direction == "down":
            sock.sendall(f"FLOOD {warmup + window + 1}\n".encode())
            return meter(sock, warmup, window)
        sock.sendall(f"METER {warmup} {window}\n".encode())
        stop = threading.Event()

        def pump() -> None:
            block = b"u" * CHUNK
            with contextlib.suppress(OSError):
                while not stop.is_set():
                    sock.sendall(block)

        sock.settimeout(warmup + window + 10)
        sender = threading.Thread(target=pump, daemon=True)
        sender.start()
        reply = sock.makefile("rb").readline()
        stop.set()
        return float(reply)


def client_hold(host: str, port: int, seconds: float) -> None:
    """An open connection exchanging a line every 50 ms; says when and how it ends."""
    start = time.monotonic()
    try:
        sock = socket.create_connection((host, port), timeout=2)
    except OSError as exc:
        print(json.dumps({"t": 0, "error": error_name(exc)}), flush=True)
        return
    sock.settimeout(2)
    reader = sock.makefile("rb")
    sock.sendall(b"ECHO\n")
    for i in range(int(seconds / 0.05) + 1):
        if time.monotonic() - start > seconds:
            break
        try:
            sock.sendall(f"{i}\n".encode())
            if reader.readline() != f"{i}\n".encode():
                raise ConnectionResetError(errno.ECONNRESET, "closed")
        except OSError as exc:
            print(json.dumps({"t": time.monotonic() - start, "error": error_name(exc)}), flush=True)
            return
        print(json.dumps({"t": time.monotonic() - start, "ok": i}), flush=True)
        time.sleep(0.05)
    print(json.dumps({"t": time.monotonic() - start, "done": True}), flush=True)


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def client_rtt(host: str, count: int, timeout: float) -> dict[str, Any]:
    """ICMP echo round trips in microseconds (no ping binary needed; we are root)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    sock.settimeout(timeout)
    ident = 0x4854
    samples: list[float] = []
    lost = 0
    for seq in range(count):
        header = bytes([8, 0, 0, 0]) + ident.to_bytes(2, "big") + seq.to_bytes(2, "big")
        payload = b"hotspot-rtt-probe" * 3
        packet = bytearray(header + payload)
        packet[2:4] = checksum(bytes(packet)).to_bytes(2, "big")
        start = time.perf_counter()
        sock.sendto(bytes(packet), (host, 0))
        for _ in range(100):
            try:
                data = sock.recv(2048)
            except TimeoutError:
                lost += 1
                break
            icmp = data[(data[0] & 0x0F) * 4 :]
            if icmp[0] == 0 and icmp[4:6] == header[4:6] and icmp[6:8] == header[6:8]:
                samples.append((time.perf_counter() - start) * 1e6)
                break
        time.sleep(0.005)
    samples.sort()
    median = samples[len(samples) // 2] if samples else None
    return {"median_us": median, "lost": lost, "count": count}


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("command")
    p.add_argument("args", nargs="*")
    p.add_argument("--lifetime", type=float, default=900.0)
    p.add_argument("--timeout", type=float, default=3.0)
    a = p.parse_args(argv)
    args = a.args
    if a.command == "serve-http":
        serve_http(int(args[0]), args[1], args[2], a.lifetime)
    elif a.command == "serve-tcp":
        serve_tcp(int(args[0]), args[1], a.lifetime)
    elif a.command == "serve-dns":
        serve_dns(int(args[0]), args[1], a.lifetime)
    elif a.command == "http":
        print(json.dumps(client_http(args[0], a.timeout)))
    elif a.command == "connect":
        print(json.dumps(client_connect(args[0], int(args[1]), a.timeout)))
    elif a.command == "dns":
        print(json.dumps(client_dns(args[0], int(args[1]), a.timeout)))
    elif a.command == "send":
        print(json.dumps(client_send(args[0], int(args[1]), int(args[2]), a.timeout)))
    elif a.command == "recv":
        print(json.dumps(client_recv(args[0], int(args[1]), int(args[2]), a.timeout)))
    elif a.command == "rtt":
        print(json.dumps(client_rtt(args[0], int(args[1]), a.timeout)))
    elif a.command == "goodput":
        bps = client_goodput(args[0], int(args[1]), args[2], float(args[3]), float(args[4]))
        print(json.dumps({"bps": bps}))
    elif a.command == "hold":
        client_hold(args[0], int(args[1]), float(args[2]))
    else:
        raise SystemExit(f"unknown command {a.command}")


if __name__ == "__main__":
    main(sys.argv[1:])
