"""`Shaper` over tc: HTB on the LAN interface (download) and on an ifb device (upload).

Layout, the same on both devices (the LAN's ingress is redirected to the ifb with mirred, so
upload can be shaped as egress there):

- root qdisc `1:` htb, `default fffe`; class `1:ffff` at the uplink's capacity; class `1:fffe`
  under it for what no device class claims (the router's own traffic).
- GROUPS group classes `1:<g+1>` under `1:ffff` (ceil: the uplink), each holding an inner htb
  qdisc `<0x10+g>:` with its own root class `<0x10+g>:ffff` at the uplink. A device belongs to
  group (last octet mod GROUPS). Why: creating an HTB class walks every class of its qdisc (to
  rebind filters), so 5,000 classes in one qdisc cost ~2 s per direction, quadratic; spread over
  64 qdiscs they cost ~0.6 s. Measured on this kernel, 5,000 devices with leaves, one device.
- one class per device, `<0x10+g>:<offset>`, where offset is the address's position in the LAN
  prefix: stable per IP, readable (10.66.1.5 in 10.66.0.0/16 is `15:105`), and the reason the
  prefix is at most a /16 (class minors are 16 bits; offsets 0xfffe and 0xffff are ours).
- u32 filters in hash tables of 256 buckets keyed on the address's last octet: in `1:`, one
  filter per bucket sends the bucket to its group; in each group's qdisc, each device's filter
  sits in its bucket with the handle `2:<last octet>:<third octet + 1>`, stable per IP, so
  deleting needs no lookup and a bucket never comes near u32's 4,095 nodes. Classifying costs
  two hash lookups for 5 or 5,000 devices. Addresses with no device filter (trusted, unshaped)
  leave their group's qdisc unshaped, still within the uplink.
- a leaf qdisc per device class: fq_codel if the kernel has it, else sfq, else a pfifo holding
  ~100 ms at the class's rate. HTB's own default leaf would be a pfifo as long as the device's
  txqueuelen: 1,000 packets, six seconds of queue at 2 Mbit/s, and the phone's every click waits
  behind its own download.

Changes go through one `tc -batch -` per apply: pyroute2's u32 encoder has no
divisor/hashkey/link, and pyroute2 with one call per operation is ~6x slower than one batch
(KERNEL-NOTES: 7.7 s against 1.2 s for 5,000 devices); one device costs one ~3 ms batch.
`state()` reads the classes back with one raw netlink dump parsed with `struct` (exact rates,
~10x faster than pyroute2's generic parser), so reconcile compares against what the kernel
really holds.
"""

from __future__ import annotations

import errno
import json
import re
import socket
import struct
import subprocess
from collections.abc import Iterator, Mapping
from ipaddress import IPv4Address, IPv4Network
from typing import Literal

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from hotspotd.core.ports import Rate, ShaperChange
from hotspotd.errors import AdapterError

_IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
PARENT_MINOR = 0xFFFF
DEFAULT_MINOR = 0xFFFE
GROUP_MAJOR = 0x10  # group g's qdisc is (GROUP_MAJOR + g):
GROUPS = 64
UNLIMITED_BPS = 10_000_000_000  # an uplink of unknown capacity
LEAF_CANDIDATES = ("fq_codel", "sfq", "pfifo")
QUEUE_SECONDS = 0.1  # a pfifo leaf holds this much at its class rate
FRAME_BITS = 1514 * 8

Direction = Literal["down", "up"]
DIRECTIONS: tuple[Direction, ...] = ("down", "up")


class TcShaper:
    """The router's `Shaper`: per-device HTB classes found by a u32 hash table."""

    def __init__(
        self,
        *,
        lan_interface: str,
        lan_prefix: IPv4Network | str,
        ifb: str = "ifb-hotspot",
        groups: int = GROUPS,
        leaf_candidates: tuple[str, ...] = LEAF_CANDIDATES,
        tc: str = "tc",
        timeout: float = 60.0,
    ) -> None:
        for name in (lan_interface, ifb):
            if not _IFNAME.match(name):
                raise ValueError(f"not an interface name: {name!r}")
        prefix = IPv4Network(lan_prefix)
        if prefix.prefixlen < 16:
            raise ValueError(f"LAN prefix {prefix} is larger than a /16: class ids are 16 bits")
        if groups not in (1, 2, 4, 8, 16, 32, 64, 128, 256):
            raise ValueError("groups must be a power of two up to 256 (buckets are 256)")
        self._groups = groups
        self._lan = lan_interface
        self._ifb = ifb
        self._prefix = prefix
        self._tc = tc
        self._leaf_candidates = leaf_candidates
        self._timeout = timeout
        self._leaf: str | None = None
        self._leaf_known = False
        self._rates: dict[IPv4Address, Rate] | None = None  # mirror, refreshed by state()

    # -- Shaper protocol ---------------------------------------------------------------------

    def setup(self, uplink: Rate) -> None:
        """Build the root qdiscs once; on a second call only the uplink rates are updated."""
        self._ensure_ifb()
        down = uplink.down_bps or UNLIMITED_BPS
        up = uplink.up_bps or UNLIMITED_BPS
        if self._is_built(self._lan) and self._is_built(self._ifb):
            try:
                self._batch(
                    [
                        *self._top_classes(self._lan, down, "change"),
                        *self._top_classes(self._ifb, up, "change"),
                    ]
                )
            except AdapterError:
                pass  # not our layout after all: build it from scratch below
            else:
                self._detect_existing_leaf()
                return
        self._delete_qdiscs()
        self._batch(
            [
                *self._root(self._lan, down, "dst"),
                *self._root(self._ifb, up, "src"),
                f"qdisc add dev {self._lan} handle ffff: ingress",
                f"filter add dev {self._lan} parent ffff: protocol ip prio 1 u32"
                f" match u32 0 0 action mirred egress redirect dev {self._ifb}",
            ]
        )
        self._leaf = self._detect_leaf(down, up)
        self._leaf_known = True
        self._rates = {}

    def teardown(self) -> None:
        self._delete_qdiscs()
        with IPRoute() as ipr:
            try:
                ipr.link("del", ifname=self._ifb)
            except NetlinkError as exc:
                if exc.code not in (errno.ENODEV, errno.ENOENT):
                    raise AdapterError(f"cannot delete {self._ifb}: {exc}") from exc
        self._rates = None

    def state(self) -> Mapping[IPv4Address, Rate]:
        down = self._device_rates(self._lan)
        up = self._device_rates(self._ifb)
        rates = {ip: Rate(down_bps=down.get(ip), up_bps=up.get(ip)) for ip in down.keys() | up}
        self._rates = dict(rates)
        return rates

    def apply(self, change: ShaperChange) -> None:
        if change.is_empty():
            return
        if self._rates is None:
            self.state()
        if not self._leaf_known:
            self._detect_existing_leaf()
        try:
            self._apply_once(change)
        except AdapterError:
            # tc stopped at the first error, half-way. Start again from the kernel, re-issue
            # every command of a set device (they are all idempotent "replace"), let tc go past
            # the errors of deleting what is already gone, then check the result.
            self.state()
            self._apply_once(change, retry=True)
            actual = self.state()
            for ip, rate in change.set.items():
                if not _same(actual.get(ip, Rate()), rate):
                    raise AdapterError(f"tc could not shape {ip} at {rate}") from None
            for ip in change.remove - change.set.keys():
                if ip in actual:
                    raise AdapterError(f"tc could not remove {ip}") from None

    # -- internals ---------------------------------------------------------------------------

    def class_minor(self, ip: IPv4Address) -> int:
        """The device's class id within `1:`; raises ValueError outside the LAN prefix."""
        if ip not in self._prefix:
            raise ValueError(f"{ip} is not in the LAN prefix {self._prefix}")
        offset = int(ip) - int(self._prefix.network_address)
        if not 0 < offset < DEFAULT_MINOR:
            raise ValueError(f"{ip} cannot be shaped: its class id is reserved")
        return offset

    def _apply_once(self, change: ShaperChange, retry: bool = False) -> None:
        current = self._rates if self._rates is not None else {}
        lines: list[str] = []
        # One device's commands after another's: interleaving the LAN and the ifb costs ~30 %.
        for direction in DIRECTIONS:
            for ip in sorted(change.remove - change.set.keys()):
                if _bps(current.get(ip, Rate()), direction) is not None:
                    lines.extend(self._device_del(ip, direction))
            for ip, rate in sorted(change.set.items()):
                want, have = _bps(rate, direction), _bps(current.get(ip, Rate()), direction)
                if want is not None and (want != have or retry):
                    lines.extend(self._device_set(ip, direction, want, have is None or retry))
                elif want is None and have is not None:
                    lines.extend(self._device_del(ip, direction))
        self._batch(lines, force=retry)
        for ip in change.remove - change.set.keys():
            current.pop(ip, None)
        for ip, rate in change.set.items():
            if rate.down_bps is None and rate.up_bps is None:
                current.pop(ip, None)
            else:
                current[ip] = rate
        self._rates = current

    def _dev(self, direction: Direction) -> tuple[str, str]:
        return (self._lan, "dst") if direction == "down" else (self._ifb, "src")

    def group_major(self, ip: IPv4Address) -> int:
        """Handle major of the group qdisc that holds the device's class."""
        return GROUP_MAJOR + (int(ip) & 0xFF) % self._groups

    def _device_set(self, ip: IPv4Address, direction: Direction, bps: int, new: bool) -> list[str]:
        dev, field = self._dev(direction)
        minor, major = self.class_minor(ip), self.group_major(ip)
        cls = f"{major:x}:{minor:x}"
        lines = [
            f"class replace dev {dev} parent {major:x}:{PARENT_MINOR:x} classid {cls}"
            f" htb rate {bps}bit ceil {bps}bit"
        ]
        if self._leaf is not None and (new or self._leaf == "pfifo"):
            # No handle: the kernel numbers leaves from 8000: up, clear of the group qdiscs.
            lines.append(f"qdisc replace dev {dev} parent {cls} {_leaf_args(self._leaf, bps)}")
        if new:
            lines.append(
                f"filter replace dev {dev} parent {major:x}: prio 1 handle {_filter_handle(ip)}"
                f" protocol ip u32 ht 2:{int(ip) & 0xFF:x}: match ip {field} {ip}/32"
                f" flowid {cls}"
            )
        return lines

    def _device_del(self, ip: IPv4Address, direction: Direction) -> list[str]:
        dev, _ = self._dev(direction)
        major = self.group_major(ip)
        return [
            f"filter del dev {dev} parent {major:x}: prio 1 handle {_filter_handle(ip)}"
            " protocol ip u32",
            f"class del dev {dev} classid {major:x}:{self.class_minor(ip):x}",
        ]

    def _top_classes(self, dev: str, bps: int, verb: str) -> list[str]:
        share = max(8, bps // self._groups)
        lines = [
            f"class {verb} dev {dev} parent 1: classid 1:{PARENT_MINOR:x}"
            f" htb rate {bps}bit ceil {bps}bit",
            f"class {verb} dev {dev} parent 1:{PARENT_MINOR:x} classid 1:{DEFAULT_MINOR:x}"
            f" htb rate {share}bit ceil {bps}bit",
        ]
        for group in range(self._groups):
            major = GROUP_MAJOR + group
            lines.append(
                f"class {verb} dev {dev} parent 1:{PARENT_MINOR:x} classid 1:{group + 1:x}"
                f" htb rate {share}bit ceil {bps}bit"
            )
            if verb == "add":
                lines.append(f"qdisc add dev {dev} parent 1:{group + 1:x} handle {major:x}: htb")
            lines.append(
                f"class {verb} dev {dev} parent {major:x}: classid {major:x}:{PARENT_MINOR:x}"
                f" htb rate {bps}bit ceil {bps}bit"
            )
        return lines

    def _hash_table(self, dev: str, parent: str, field: str) -> list[str]:
        offset = 16 if field == "dst" else 12
        return [
            f"filter add dev {dev} parent {parent} prio 1 handle 2: protocol ip u32 divisor 256",
            f"filter add dev {dev} parent {parent} prio 1 protocol ip u32 ht 800::"
            f" match ip {field} {self._prefix} hashkey mask 0x000000ff at {offset} link 2:",
        ]

    def _root(self, dev: str, bps: int, field: str) -> list[str]:
        lines = [
            f"qdisc add dev {dev} root handle 1: htb default {DEFAULT_MINOR:x}",
            *self._top_classes(dev, bps, "add"),
            *self._hash_table(dev, "1:", field),
        ]
        for bucket in range(256):
            lines.append(
                f"filter add dev {dev} parent 1: prio 1 handle 2:{bucket:x}:1 protocol ip u32"
                f" ht 2:{bucket:x}: match u32 0 0 flowid 1:{bucket % self._groups + 1:x}"
            )
        for group in range(self._groups):
            lines.extend(self._hash_table(dev, f"{GROUP_MAJOR + group:x}:", field))
        return lines

    def _detect_leaf(self, down_bps: int, up_bps: int) -> str | None:
        """Try each candidate on the default class; the first the kernel accepts is the leaf."""
        for kind in self._leaf_candidates:
            ok = True
            for dev, bps in ((self._lan, down_bps), (self._ifb, up_bps)):
                where = ["parent", f"1:{DEFAULT_MINOR:x}"]
                proc = self._tc_run(
                    ["qdisc", "replace", "dev", dev, *where, *_leaf_args(kind, bps).split()]
                )
                ok = ok and proc.returncode == 0
            if ok:
                return kind
        return None

    def _detect_existing_leaf(self) -> None:
        qdiscs = self._qdiscs(self._lan)
        kinds = {q.get("kind") for q in qdiscs if q.get("parent") == f"1:{DEFAULT_MINOR:x}"}
        # Whatever a previous setup chose is what the kernel has: keep using it.
        found = sorted(str(k) for k in kinds if k)
        self._leaf = found[0] if found else None
        self._leaf_known = True

    def _is_built(self, dev: str) -> bool:
        """Our layout with this many groups: root `1:` and the last group's qdisc, no more."""
        handles = {q.get("handle") for q in self._qdiscs(dev) if q.get("kind") == "htb"}
        last, beyond = GROUP_MAJOR + self._groups - 1, GROUP_MAJOR + self._groups
        return {"1:", f"{last:x}:"} <= handles and f"{beyond:x}:" not in handles

    def _qdiscs(self, dev: str) -> list[dict[str, object]]:
        proc = self._tc_run(["-j", "qdisc", "show", "dev", dev])
        if proc.returncode != 0:
            return []
        data = json.loads(proc.stdout or "[]")
        return [q for q in data if isinstance(q, dict)]

    def _delete_qdiscs(self) -> None:
        # Missing qdiscs are not an error here: this is how we start clean.
        for dev, where in ((self._lan, "root"), (self._lan, "ingress"), (self._ifb, "root")):
            self._tc_run(["qdisc", "del", "dev", dev, where])

    def _ensure_ifb(self) -> None:
        with IPRoute() as ipr:
            try:
                ipr.link("add", ifname=self._ifb, kind="ifb")
            except NetlinkError as exc:
                if exc.code != errno.EEXIST:
                    raise AdapterError(f"cannot create {self._ifb}: {exc}") from exc
            try:
                index = ipr.link_lookup(ifname=self._ifb)[0]
                ipr.link("set", index=index, state="up", txqlen=1000)
            except (NetlinkError, IndexError) as exc:
                raise AdapterError(f"cannot bring {self._ifb} up: {exc}") from exc

    def _tc_run(
        self, args: list[str], script: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                [self._tc, *args],
                input=script,
                capture_output=True,
                text=True,
                timeout=self._timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise AdapterError(f"cannot run {self._tc}: {exc}") from exc

    def _batch(self, lines: list[str], force: bool = False) -> None:
        if not lines:
            return
        proc = self._tc_run(
            [*(["-force"] if force else []), "-batch", "-"], "\n".join(lines) + "\n"
        )
        if proc.returncode != 0 and not force:
            raise AdapterError(f"tc failed: {proc.stderr.strip()}")

    def _device_rates(self, dev: str) -> dict[IPv4Address, int]:
        base = int(self._prefix.network_address)
        groups = range(GROUP_MAJOR, GROUP_MAJOR + self._groups)
        rates: dict[IPv4Address, int] = {}
        for handle, parent, bps in _htb_classes(dev):
            major, minor = handle >> 16, handle & 0xFFFF
            if major in groups and parent == (major << 16 | PARENT_MINOR) and minor < DEFAULT_MINOR:
                rates[IPv4Address(base + minor)] = bps
        return rates


def queue_packets(bps: int) -> int:
    """A pfifo limit of ~QUEUE_SECONDS at `bps`, at least 16 packets, at most 1,000."""
    return max(16, min(1000, int(bps * QUEUE_SECONDS) // FRAME_BITS))


def _leaf_args(kind: str, bps: int) -> str:
    return f"pfifo limit {queue_packets(bps)}" if kind == "pfifo" else kind


def _same(a: Rate, b: Rate) -> bool:
    """Equal as HTB holds them: whole bytes per second."""
    return all(
        (x is None and y is None) or (x is not None and y is not None and x // 8 == y // 8)
        for x, y in ((a.down_bps, b.down_bps), (a.up_bps, b.up_bps))
    )


def _bps(rate: Rate, direction: Direction) -> int | None:
    return rate.down_bps if direction == "down" else rate.up_bps


def _filter_handle(ip: IPv4Address) -> str:
    value = int(ip)
    return f"2:{value & 0xFF:x}:{((value >> 8) & 0xFF) + 1:x}"


# -- one raw netlink dump of a device's HTB classes ---------------------------------------------

_NLMSG = struct.Struct("=IHHII")
_TCMSG = struct.Struct("=BxxxiIII")
_RTA = struct.Struct("=HH")
_RTM_NEWTCLASS, _RTM_GETTCLASS = 40, 42
_NLM_F_REQUEST_DUMP = 0x1 | 0x300
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_TCA_KIND, _TCA_OPTIONS = 1, 2
_TCA_HTB_PARMS, _TCA_HTB_RATE64 = 1, 6


def _attributes(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(type, value start, value end) of each netlink attribute in data[start:end]."""
    while start + 4 <= end:
        length, kind = _RTA.unpack_from(data, start)
        if length < 4:
            return
        yield kind & 0x3FFF, start + 4, start + length
        start += (length + 3) & ~3


def _htb_classes(dev: str) -> list[tuple[int, int, int]]:
    """(class handle, parent handle, rate in bit/s) of every HTB class on `dev`."""
    try:
        index = socket.if_nametoindex(dev)
    except OSError as exc:
        raise AdapterError(f"no interface {dev}: {exc}") from exc
    request = _TCMSG.pack(socket.AF_UNSPEC, index, 0, 0, 0)
    header = _NLMSG.pack(_NLMSG.size + len(request), _RTM_GETTCLASS, _NLM_F_REQUEST_DUMP, 1, 0)
    result: list[tuple[int, int, int]] = []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
        sock.settimeout(10.0)
        sock.sendall(header + request)
        for _ in range(1_000_000):  # bounded: a dump ends with NLMSG_DONE long before this
            data = sock.recv(1 << 20)
            offset = 0
            while offset + _NLMSG.size <= len(data):
                length, kind, _flags, _seq, _pid = _NLMSG.unpack_from(data, offset)
                if length < _NLMSG.size:
                    raise AdapterError("malformed netlink message")
                if kind == _NLMSG_DONE:
                    return result
                if kind == _NLMSG_ERROR:
                    (code,) = struct.unpack_from("=i", data, offset + _NLMSG.size)
                    if code:
                        raise AdapterError(f"class dump of {dev}: {errno.errorcode.get(-code)}")
                elif kind == _RTM_NEWTCLASS:
                    parsed = _parse_class(data, offset + _NLMSG.size, offset + length)
                    if parsed is not None:
                        result.append(parsed)
                offset += (length + 3) & ~3
    raise AdapterError(f"class dump of {dev} did not end")


def _parse_class(data: bytes, start: int, end: int) -> tuple[int, int, int] | None:
    _family, _index, handle, parent, _info = _TCMSG.unpack_from(data, start)
    kind = b""
    rate: int | None = None
    rate64: int | None = None
    for attr, lo, hi in _attributes(data, start + _TCMSG.size, end):
        if attr == _TCA_KIND:
            kind = data[lo:hi].rstrip(b"\0")
        elif attr == _TCA_OPTIONS:
            for sub, slo, shi in _attributes(data, lo, hi):
                if sub == _TCA_HTB_PARMS and shi - slo >= 12:
                    # struct tc_htb_opt starts with tc_ratespec rate; its last u32 is bytes/s.
                    (rate,) = struct.unpack_from("=I", data, slo + 8)
                elif sub == _TCA_HTB_RATE64 and shi - slo >= 8:
                    (rate64,) = struct.unpack_from("=Q", data, slo)
    if kind != b"htb" or rate is None:
        return None
    return handle, parent, 8 * (rate64 if rate64 is not None else rate)
