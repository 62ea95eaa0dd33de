"""Reading one table of the config file: typed values, each mistake named by file and key.

`hotspotd.config` says what the keys are and what they mean; this module how a value is read
and checked (an interface name, ports, networks, MACs), and which keys were left over.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from hotspotd.core import units
from hotspotd.core.ports import normalize_mac
from hotspotd.errors import ConfigError

_IFNAME = re.compile(r"^[A-Za-z0-9_.:@-]{1,15}$")

T = TypeVar("T")


class Table:
    """Reads one TOML table, remembering which keys were used so leftovers are reported."""

    def __init__(self, path: str, prefix: str, data: Mapping[str, Any]) -> None:
        self.path, self.prefix, self.data = path, prefix, data
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def fail(self, name: str, reason: str) -> ConfigError:
        return ConfigError(self.path, self.key(name), reason)

    def get(self, name: str, kind: type[T], default: T) -> T:
        self.used.add(name)
        if name not in self.data:
            return default
        value = self.data[name]
        if kind is int and isinstance(value, bool):
            raise self.fail(name, f"expected an integer, got {value!r}")
        if not isinstance(value, kind):
            raise self.fail(name, f"expected {_type_name(kind)}, got {_type_name(type(value))}")
        return value

    def parsed(self, name: str, parse: Callable[[str], T], default: T, what: str) -> T:
        """A string in human units ("3h", "1GB", "2M"), or a plain integer."""
        self.used.add(name)
        if name not in self.data:
            return default
        value = self.data[name]
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise self.fail(name, f"expected {what} as a string, got {_type_name(type(value))}")
        try:
            return parse(str(value))
        except ValueError as exc:
            raise self.fail(name, str(exc)) from None

    def optional(
        self, name: str, parse: Callable[[str], int], default: int | None, what: str
    ) -> int | None:
        value = self.data.get(name)
        if isinstance(value, str) and units.is_none(value):
            self.used.add(name)
            return None
        return self.parsed(name, parse, default, what)

    def table(self, name: str) -> Table:
        self.used.add(name)
        value = self.data.get(name, {})
        if not isinstance(value, dict):
            raise self.fail(name, f"expected a table [{self.key(name)}]")
        return Table(self.path, self.key(name), value)

    def finish(self) -> None:
        for name in self.data:
            if name not in self.used:
                raise self.fail(name, "unknown key")


def _type_name(kind: type) -> str:
    names = {str: "a string", int: "an integer", bool: "true or false", float: "a number"}
    return {**names, list: "a list"}.get(kind, kind.__name__)


def interface(table: Table, name: str, default: str | None) -> str | None:
    value = table.get(name, str, default or "")
    if not value:
        if default is None:
            return None
        raise table.fail(name, "must not be empty")
    if not _IFNAME.match(value):
        raise table.fail(name, f"not an interface name: {value!r}")
    return value


def ports(table: Table, name: str, default: tuple[int, ...]) -> tuple[int, ...]:
    value = table.get(name, list, list(default))
    if not value:
        raise table.fail(name, "give at least one port, e.g. [80, 443]")
    for port in value:
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise table.fail(name, f"ports are integers from 1 to 65535, got {port!r}")
    return tuple(sorted(set(value)))


def networks(table: Table, name: str) -> tuple[ipaddress.IPv4Network, ...]:
    """A list of IPv4 networks ("192.168.1.10/32", or a plain address for /32)."""
    result = []
    for item in table.get(name, list, []):
        if not isinstance(item, str):
            raise table.fail(name, f"expected IPv4 networks as strings, got {item!r}")
        try:
            result.append(ipaddress.IPv4Network(item, strict=True))
        except ValueError as exc:
            raise table.fail(name, f'not an IPv4 network: {exc} (e.g. "192.168.1.10/32")') from None
    return tuple(result)


def macs(table: Table, name: str) -> tuple[str, ...]:
    """A list of devices' MACs ("02:11:22:33:44:55" or with dashes), lower-cased, each once."""
    result: list[str] = []
    for item in table.get(name, list, []):
        example = '(e.g. "02:11:22:33:44:55")'
        if not isinstance(item, str):
            raise table.fail(name, f"expected MAC addresses as strings, got {item!r} {example}")
        try:
            mac = normalize_mac(item)
        except ValueError:
            raise table.fail(name, f"not a MAC address: {item!r} {example}") from None
        if int(mac[:2], 16) & 1:
            raise table.fail(name, f"{item!r} is a group address, never a device's {example}")
        if mac not in result:
            result.append(mac)
    return tuple(result)
