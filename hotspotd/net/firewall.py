"""`Firewall` over nftables: one table of our own, `inet hotspot`.

This module owns `NftFirewall`, the port the core drives: setup and teardown of the table,
reading the kernel's state, applying a change by difference and reading each device's bytes.
The script it loads, and what each chain decides, is `hotspotd.net.ruleset`'s; the scripts
run through `hotspotd.net.nft` (libnftables, else the `nft` program); the counters come from
`hotspotd.net.nft_counters`.

setup() also replaces the sets an earlier version made in another shape (nft changes neither
a set's type nor its flags in place), in the same transaction as the new rules.

Counters are read with one netfilter netlink dump per counter set (`auth_up`, `auth_down`)
parsed with `struct` (5,000 devices in ~55 ms; nft's listing, the fallback, takes ~130 ms).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping
from ipaddress import IPv4Address
from typing import Any

from hotspotd.core.ports import Counters, DeviceKey, FirewallChange, FirewallState
from hotspotd.errors import AdapterError
from hotspotd.net.nft import NftRunner, default_runner
from hotspotd.net.nft_counters import dump_set_counters
from hotspotd.net.ruleset import (
    Ruleset,
)

_IPV4 = r"\d{1,3}(?:\.\d{1,3}){3}"
_MAC = r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}"
_UP_ELEMENT = re.compile(rf"({_IPV4}) \. ({_MAC}) counter packets \d+ bytes (\d+)")
_DOWN_ELEMENT = re.compile(rf"({_IPV4}) counter packets \d+ bytes (\d+)")
_ELEMENTS = re.compile(r"elements = \{(.*?)\}", re.S)


class NftFirewall:
    """The router's `Firewall`: our own nftables table, changed only by difference."""

    def __init__(
        self, *, runner_factory: Callable[[], NftRunner] = default_runner, **settings: Any
    ) -> None:
        """`settings` are the `Ruleset`'s: interfaces, portal, garden, DNS limits, checked there."""
        self._rules = Ruleset(**settings)
        self._table = self._rules.table
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
        self._run(self._earlier_shapes() + self.ruleset())

    def _earlier_shapes(self) -> str:
        """What removes the sets an earlier version made in another shape, before ruleset().

        nft refuses to change a set's type or flags in place ("File exists"), and a set cannot
        go while rules refer to it; so the chains are flushed first, in the same transaction
        as the new ruleset: nothing is ever open in between.
        """
        t = f"inet {self._table}"
        stale = []
        kept: list[str] = []
        try:
            listing = self._run(f"list set {t} garden_dns\n")
        except AdapterError:
            listing = ""  # no table yet
        if listing and not re.search(r"^\s*timeout \S+$", listing, re.M):
            stale.append("garden_dns")  # without a timeout (until it had one): keep its addresses
            kept = _elements(listing, _IPV4)
        try:
            self._run(f"list set {t} dns_rate\n")  # per address (until it was per MAC)
            stale.append("dns_rate")
        except AdapterError:
            pass  # no such set, or no table yet
        if not stale:
            return ""
        lines = [f"add table {t}"]
        for name, hook in self._rules.chains().items():
            lines.append(f"add chain {t} {name} {{ {hook} }}" if hook else f"add chain {t} {name}")
            lines.append(f"flush chain {t} {name}")
        lines.extend(f"delete set {t} {name}" for name in stale)
        lines.append(f"add set {t} garden_dns {self._rules.garden_dns_shape()}")
        _element_line(lines, "add", t, "garden_dns", kept)
        return "\n".join(lines) + "\n"

    def teardown(self) -> None:
        # "add" first makes the delete succeed whether or not the table exists.
        self._run(f"add table inet {self._table}\ndelete table inet {self._table}\n")
        self._macs_of = None

    def state(self) -> FirewallState:
        # One set per command: nft 1.0.6 fails on several `list set` in one script, and
        # listing the whole table would also print `auth` and `auth_down` for nothing.
        lists = {
            name: self._run(f"list set inet {self._table} {name}\n")
            for name in ("trusted", "blocked", "garden")
        }
        try:
            authorized = frozenset(self._up_counters())
        except AdapterError:
            up_listing = self._run(f"list set inet {self._table} auth_up\n")
            authorized = frozenset(
                DeviceKey(IPv4Address(ip), mac) for ip, mac, _ in _UP_ELEMENT.findall(up_listing)
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
        """Every device's bytes: two netlink dumps parsed with `struct` (~10x faster than
        having nft print 5,000 elements), or nft's own listing should that fail."""
        try:
            up = self._up_counters()
            down = dump_set_counters(self._table, "auth_down")
        except AdapterError:
            return self._counters_from_listing()
        down_bytes = {key[:4]: count for key, count in down}
        return {
            device: Counters(bytes_up=count, bytes_down=down_bytes.get(device.ip.packed, 0))
            for device, count in up.items()
        }

    def _up_counters(self) -> dict[DeviceKey, int]:
        result: dict[DeviceKey, int] = {}
        for key, count in dump_set_counters(self._table, "auth_up"):
            if len(key) < 10:
                raise AdapterError(f"unexpected auth_up key of {len(key)} bytes")
            result[_trusted_key(IPv4Address(key[:4]), key[4:10].hex(":"))] = count
        return result

    def _counters_from_listing(self) -> Mapping[DeviceKey, Counters]:
        """Both sets listed at the same time by two contexts (ctypes frees the GIL)."""
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

    def ruleset(self) -> str:
        """The nft script setup() runs. Loaded at boot (e.g. from /etc/nftables.conf) it closes
        the door before hotspotd starts: with no table at all, the router forwards everyone."""
        return self._rules.text()

    _ruleset = ruleset  # the name tests/unit/test_install.py knew it by; prefer ruleset()


def _trusted_key(ip: IPv4Address, mac: str) -> DeviceKey:
    """A DeviceKey from values the kernel gave us, skipping re-validation: it costs ~17 us a
    key, a third of a 5,000-device counter read."""
    key = object.__new__(DeviceKey)
    object.__setattr__(key, "ip", ip)
    object.__setattr__(key, "mac", mac)
    return key


def _key(key: DeviceKey) -> str:
    return f"{key.ip} . {key.mac}"


def _element_line(lines: list[str], verb: str, table: str, name: str, items: Iterable[str]) -> None:
    text = ", ".join(items)
    if text:
        lines.append(f"{verb} element {table} {name} {{ {text} }}")


def _elements(set_body: str, pattern: str) -> list[str]:
    match = _ELEMENTS.search(set_body)
    return re.findall(pattern, match.group(1)) if match else []
