"""`Firewall` over nftables: one table of our own, `inet hotspot`.

Commands go to libnftables through ctypes, one context kept open, when the library loads (the
kernel's deferred clean-up then runs once per batch, not per process: deleting one element of
5,000 costs ~0.2 ms instead of 13-17 ms through the `nft` command); otherwise they are piped to
`nft -f -`. Both take the same text, built only from validated values (`IPv4Address`,
normalized MACs, checked interface names and integers), so no input can inject a command.

Per-packet decisions, each evaluated on every packet rather than only on a connection's first,
so that deauthorizing a device also ends the connections it already has open:

- `prerouting_raw` (before conntrack): a blocked MAC gets nothing, not even the portal.
- `lan_nat`: an unauthorized device's tcp/80 goes to the portal (DNAT).
- `lan_out` (forwarded, from the LAN): authorized (IP and MAC together), trusted MACs, the
  portal and the walled garden pass; IPv6 is refused (no way around the portal); the rest is
  refused at once: tcp reset, else icmp admin-prohibited.
- `lan_in` (forwarded, towards the LAN): authorized addresses, replies from the garden and to
  connections of trusted MACs (ct mark) pass; other established tcp gets a reset so the far end
  stops too; the rest is dropped.

Two counter sets, `auth_up` (`ipv4_addr . ether_addr`) and `auth_down` (`ipv4_addr`), are only
looked up in the forward chains, so each forwarded byte is counted once; a third plain set
`auth` serves the NAT decision without touching the counters.
"""

from __future__ import annotations

import ctypes
import re
import subprocess
import threading
from collections.abc import Callable, Iterable, Mapping
from ipaddress import IPv4Address
from typing import Protocol

from hotspotd.core.ports import Counters, DeviceKey, FirewallChange, FirewallState
from hotspotd.errors import AdapterError

_IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,31}$")
_IPV4 = r"\d{1,3}(?:\.\d{1,3}){3}"
_MAC = r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}"
_UP_ELEMENT = re.compile(rf"({_IPV4}) \. ({_MAC}) counter packets \d+ bytes (\d+)")
_DOWN_ELEMENT = re.compile(rf"({_IPV4}) counter packets \d+ bytes (\d+)")
_ELEMENTS = re.compile(r"elements = \{(.*?)\}", re.S)

_NFT_CTX_OUTPUT_JSON = 1 << 4


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
            raise AdapterError(f"nft failed: {(err or b'').decode(errors='replace').strip()}")
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
            raise AdapterError(f"nft failed: {proc.stderr.decode(errors='replace').strip()}")
        return proc.stdout.decode()

    def close(self) -> None:
        """Nothing is held between calls."""


def default_runner() -> NftRunner:
    """libnftables when it loads, else the `nft` program."""
    try:
        return LibNftables()
    except AdapterError:
        return NftCommand()


class NftFirewall:
    """The router's `Firewall`: our own nftables table, changed only by difference."""

    def __init__(
        self,
        *,
        lan_interface: str,
        portal_ip: IPv4Address | str,
        portal_port: int = 80,
        table: str = "hotspot",
        dns_redirect_port: int | None = None,
        trusted_ct_mark: int = 0x00400000,
        runner_factory: Callable[[], NftRunner] = default_runner,
    ) -> None:
        if not _IFNAME.match(lan_interface):
            raise ValueError(f"not an interface name: {lan_interface!r}")
        if not _TABLE.match(table):
            raise ValueError(f"not a table name: {table!r}")
        for name, port in (("portal_port", portal_port), ("dns_redirect_port", dns_redirect_port)):
            if port is not None and not 0 < int(port) < 65536:
                raise ValueError(f"{name} out of range: {port}")
        if not 0 < trusted_ct_mark < 2**32 or trusted_ct_mark & (trusted_ct_mark - 1):
            raise ValueError("trusted_ct_mark must be a single bit")
        self._lan = lan_interface
        self._portal_ip = IPv4Address(portal_ip)
        self._portal_port = int(portal_port)
        self._table = table
        self._dns_port = dns_redirect_port
        self._mark = trusted_ct_mark
        self._runner_factory = runner_factory
        self._runner: NftRunner | None = None
        self._reader: NftRunner | None = None  # second context: read both counter sets at once
        # What we believe `auth_up` holds, as address -> MACs: lets a deauthorize know whether
        # the address is still used by another key without reading the kernel. Refreshed by
        # every state().
        self._macs_of: dict[IPv4Address, set[str]] | None = None

    # -- Firewall protocol -------------------------------------------------------------------

    def setup(self) -> None:
        """Create or update our table in one transaction; set elements survive (restart-safe)."""
        self._run(self._ruleset())

    def teardown(self) -> None:
        # "add" first makes the delete succeed whether or not the table exists.
        self._run(f"add table inet {self._table}\ndelete table inet {self._table}\n")
        self._macs_of = None

    def state(self) -> FirewallState:
        # One set per command: nft 1.0.6 fails on several `list set` in one script, and
        # listing the whole table would also print `auth` and `auth_down` for nothing.
        lists = {
            name: self._run(f"list set inet {self._table} {name}\n")
            for name in ("auth_up", "trusted", "blocked", "garden")
        }
        authorized = frozenset(
            DeviceKey(IPv4Address(ip), mac) for ip, mac, _ in _UP_ELEMENT.findall(lists["auth_up"])
        )
        macs_of: dict[IPv4Address, set[str]] = {}
        for key in authorized:
            macs_of.setdefault(key.ip, set()).add(key.mac)
        self._macs_of = macs_of
        return FirewallState(
            authorized=authorized,
            trusted=frozenset(_elements(lists["trusted"], _MAC)),
            blocked=frozenset(_elements(lists["blocked"], _MAC)),
            garden=frozenset(IPv4Address(a) for a in _elements(lists["garden"], _IPV4)),
        )

    def apply(self, change: FirewallChange) -> None:
        if change.is_empty():
            return
        if self._macs_of is None:
            self.state()
        try:
            self._apply_once(change)
        except AdapterError:
            # Most likely a delete of an element that is not there (nft 1.0.6 has no `destroy`):
            # re-read the kernel and drop the edits that are already true, then try once more.
            actual = self.state()
            self._apply_once(
                FirewallChange(
                    authorize=change.authorize,
                    deauthorize=change.deauthorize & actual.authorized,
                    trust=change.trust,
                    untrust=change.untrust & actual.trusted,
                    block=change.block,
                    unblock=change.unblock & actual.blocked,
                    garden_add=change.garden_add,
                    garden_remove=change.garden_remove & actual.garden,
                )
            )

    def counters(self) -> Mapping[DeviceKey, Counters]:
        """Both counter sets read at the same time by two contexts (ctypes frees the GIL)."""
        down_text: list[str] = []
        failure: list[AdapterError] = []

        def read_down() -> None:
            try:
                down_text.append(self._read(f"list set inet {self._table} auth_down\n"))
            except AdapterError as exc:
                failure.append(exc)

        thread = threading.Thread(target=read_down, name="nft-read-down")
        thread.start()
        try:
            up_text = self._run(f"list set inet {self._table} auth_up\n")
        finally:
            thread.join(timeout=60)
        if failure:
            raise failure[0]
        if not down_text:
            raise AdapterError("reading download counters timed out")
        down = {ip: int(b) for ip, b in _DOWN_ELEMENT.findall(down_text[0])}
        return {
            DeviceKey(IPv4Address(ip), mac): Counters(bytes_up=int(b), bytes_down=down.get(ip, 0))
            for ip, mac, b in _UP_ELEMENT.findall(up_text)
        }

    def close(self) -> None:
        """Release the libnftables contexts (the table stays)."""
        for runner in (self._runner, self._reader):
            if runner is not None:
                runner.close()
        self._runner = self._reader = None

    # -- internals ---------------------------------------------------------------------------

    def _run(self, script: str) -> str:
        if self._runner is None:
            self._runner = self._runner_factory()
        return self._runner.run(script)

    def _read(self, script: str) -> str:
        if self._reader is None:
            self._reader = self._runner_factory()
        return self._reader.run(script)

    def _apply_once(self, change: FirewallChange) -> None:
        # Touch only the changed keys: copying a 5,000-key mirror would cost more than the
        # kernel transaction itself.
        macs_of = self._macs_of if self._macs_of is not None else {}
        leaving = change.deauthorize - change.authorize
        arriving_ips = {k.ip for k in change.authorize}
        gone_ips = {
            ip
            for ip in {k.ip for k in leaving} - arriving_ips
            if not macs_of.get(ip, set()) - {k.mac for k in leaving if k.ip == ip}
        }
        t = f"inet {self._table}"
        lines: list[str] = []
        # Deletes first, adds second: an element both removed and added ends up present.
        _element_line(lines, "delete", t, "auth", map(_key, sorted(change.deauthorize)))
        _element_line(lines, "delete", t, "auth_up", map(_key, sorted(change.deauthorize)))
        _element_line(lines, "delete", t, "auth_down", map(str, sorted(gone_ips)))
        _element_line(lines, "delete", t, "trusted", sorted(change.untrust))
        _element_line(lines, "delete", t, "blocked", sorted(change.unblock))
        _element_line(lines, "delete", t, "garden", map(str, sorted(change.garden_remove)))
        _element_line(lines, "add", t, "auth", map(_key, sorted(change.authorize)))
        _element_line(lines, "add", t, "auth_up", map(_key, sorted(change.authorize)))
        new_ips = sorted({key.ip for key in change.authorize})
        _element_line(lines, "add", t, "auth_down", map(str, new_ips))
        _element_line(lines, "add", t, "trusted", sorted(change.trust))
        _element_line(lines, "add", t, "blocked", sorted(change.block))
        _element_line(lines, "add", t, "garden", map(str, sorted(change.garden_add)))
        if lines:
            self._run("\n".join(lines) + "\n")
        for key in leaving:
            macs = macs_of.get(key.ip)
            if macs is not None:
                macs.discard(key.mac)
                if not macs:
                    del macs_of[key.ip]
        for key in change.authorize:
            macs_of.setdefault(key.ip, set()).add(key.mac)
        self._macs_of = macs_of

    def _ruleset(self) -> str:
        t = f"inet {self._table}"
        lan = f'"{self._lan}"'
        portal = f"{self._portal_ip}:{self._portal_port}"
        mark = f"0x{self._mark:08x}"
        chains = {
            "prerouting_raw": "type filter hook prerouting priority raw; policy accept;",
            "prerouting_nat": "type nat hook prerouting priority dstnat; policy accept;",
            "forward": "type filter hook forward priority filter; policy accept;",
            "lan_nat": "",
            "lan_out": "",
            "lan_in": "",
        }
        nat_dns: list[str] = []
        if self._dns_port is not None:
            nat_dns = [
                f"udp dport 53 redirect to :{self._dns_port}",
                f"tcp dport 53 redirect to :{self._dns_port}",
            ]
        rules = {
            "prerouting_raw": [f"iifname {lan} ether saddr @blocked drop"],
            "prerouting_nat": [f"iifname {lan} jump lan_nat"],
            "forward": [f"iifname {lan} jump lan_out", f"oifname {lan} jump lan_in"],
            "lan_nat": [
                "ether saddr @trusted return",
                "ip saddr . ether saddr @auth return",
                *nat_dns,
                f"ip daddr {self._portal_ip} return",
                "ip daddr @garden return",
                "ip daddr @garden_dns return",
                f"tcp dport 80 dnat ip to {portal}",
            ],
            "lan_out": [
                "meta nfproto ipv6 meta l4proto tcp reject with tcp reset",
                "meta nfproto ipv6 reject with icmpv6 admin-prohibited",
                "ip saddr . ether saddr @auth_up accept",
                f"ether saddr @trusted ct mark set ct mark or {mark} accept",
                f"ip daddr {self._portal_ip} accept",
                "ip daddr @garden accept",
                "ip daddr @garden_dns accept",
                "meta l4proto tcp reject with tcp reset",
                "reject with icmpx admin-prohibited",
            ],
            "lan_in": [
                "ip daddr @auth_down accept",
                f"ct state established,related ct mark and {mark} == {mark} accept",
                "ct state established,related ip saddr @garden accept",
                "ct state established,related ip saddr @garden_dns accept",
                f"ct state established,related ip saddr {self._portal_ip} accept",
                "ct state established meta l4proto tcp reject with tcp reset",
                "drop",
            ],
        }
        lines = [
            f"add table {t}",
            f"add set {t} auth {{ type ipv4_addr . ether_addr; }}",
            f"add set {t} auth_up {{ type ipv4_addr . ether_addr; counter; }}",
            f"add set {t} auth_down {{ type ipv4_addr; counter; }}",
            f"add set {t} trusted {{ type ether_addr; }}",
            f"add set {t} blocked {{ type ether_addr; }}",
            f"add set {t} garden {{ type ipv4_addr; }}",
            f"add set {t} garden_dns {{ type ipv4_addr; }}",
        ]
        for name, hook in chains.items():
            lines.append(f"add chain {t} {name} {{ {hook} }}" if hook else f"add chain {t} {name}")
            lines.append(f"flush chain {t} {name}")
        for name, chain_rules in rules.items():
            lines.extend(f"add rule {t} {name} {rule}" for rule in chain_rules)
        return "\n".join(lines) + "\n"


def _key(key: DeviceKey) -> str:
    return f"{key.ip} . {key.mac}"


def _element_line(lines: list[str], verb: str, table: str, name: str, items: Iterable[str]) -> None:
    text = ", ".join(items)
    if text:
        lines.append(f"{verb} element {table} {name} {{ {text} }}")


def _elements(set_body: str, pattern: str) -> list[str]:
    match = _ELEMENTS.search(set_body)
    return re.findall(pattern, match.group(1)) if match else []
