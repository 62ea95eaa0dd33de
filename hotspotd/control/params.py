"""Parameter schemas of the control operations: each names its fields, and nothing else passes.

A schema is a mapping from a parameter's name to its field. `parse` checks a request against
it: a required field that is missing, a value of the wrong kind or size, or a parameter the
schema does not name is refused with one clear message, before any operation runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from hotspotd.core.ports import normalize_mac
from hotspotd.errors import InvalidInput


class Field:
    """One parameter: `value(name, raw, lan)` gives the checked value (raw None: absent)."""

    def value(self, name: str, raw: Any, lan: IPv4Network) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class Text(Field):
    limit: int
    required: bool = True

    def value(self, name: str, raw: Any, lan: IPv4Network) -> str | None:
        if raw is None:
            if self.required:
                raise InvalidInput(f"'{name}' is required")
            return None
        if not isinstance(raw, str) or len(raw) > self.limit:
            raise InvalidInput(f"'{name}' must be text of at most {self.limit} characters")
        return raw


@dataclass(frozen=True)
class Choice(Field):
    """One of a few words; absent is None (the operation's default)."""

    choices: tuple[str, ...]

    def value(self, name: str, raw: Any, lan: IPv4Network) -> str | None:
        if raw is None:
            return None
        if raw not in self.choices:
            raise InvalidInput(f"'{name}' must be one of: {', '.join(self.choices)}")
        return str(raw)


@dataclass(frozen=True)
class Flag(Field):
    def value(self, name: str, raw: Any, lan: IPv4Network) -> bool:
        if raw is None:
            return False
        if not isinstance(raw, bool):
            raise InvalidInput(f"'{name}' must be true or false")
        return raw


@dataclass(frozen=True)
class Integer(Field):
    """A whole number within bounds; absent is 0."""

    minimum: int
    maximum: int

    def value(self, name: str, raw: Any, lan: IPv4Network) -> int:
        if raw is None:
            return 0
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise InvalidInput(self._range(name))
        if not self.minimum <= raw <= self.maximum:
            raise InvalidInput(self._range(name))
        return raw

    def _range(self, name: str) -> str:
        return f"'{name}' must be a whole number from {self.minimum} to {self.maximum}"


@dataclass(frozen=True)
class OptionalInteger(Field):
    """A whole number within bounds, or null (no limit); absent means "leave as it is"."""

    minimum: int
    maximum: int

    def value(self, name: str, raw: Any, lan: IPv4Network) -> int | None:
        if raw is None:
            return None
        return Integer(self.minimum, self.maximum).value(name, raw, lan)


@dataclass(frozen=True)
class LanAddress(Field):
    """An IPv4 address on the hotspot's own network."""

    def value(self, name: str, raw: Any, lan: IPv4Network) -> IPv4Address:
        text = Text(15).value(name, raw, lan)
        try:
            ip = IPv4Address(text)
        except ValueError:
            raise InvalidInput(f"'{name}' is not an IPv4 address") from None
        if ip not in lan:
            raise InvalidInput(f"'{name}' {ip} is not on the hotspot's network")
        return ip


@dataclass(frozen=True)
class Mac(Field):
    def value(self, name: str, raw: Any, lan: IPv4Network) -> str:
        text = Text(17).value(name, raw, lan)
        try:
            return normalize_mac(text or "")
        except ValueError:
            raise InvalidInput(f"'{name}' is not a MAC address") from None


@dataclass(frozen=True)
class Changes(Field):
    """A JSON object of named changes, each a field of its own; absent is no change."""

    fields: Mapping[str, Field]

    def value(self, name: str, raw: Any, lan: IPv4Network) -> dict[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            raise InvalidInput(f"'{name}' must be an object")
        unknown = sorted(set(raw) - set(self.fields))
        if unknown:
            raise InvalidInput(f"'{name}' has unknown entries: {', '.join(unknown)}")
        return {key: self.fields[key].value(f"{name}.{key}", raw[key], lan) for key in raw}


Schema = Mapping[str, Field]


def parse(schema: Schema, raw: Mapping[str, Any], lan: IPv4Network) -> dict[str, Any]:
    """The request's parameters, checked against the schema; anything unnamed is refused."""
    extra = sorted(set(raw) - set(schema))
    if extra:
        raise InvalidInput(f"unexpected parameter(s): {', '.join(extra)}")
    return {name: field.value(name, raw.get(name), lan) for name, field in schema.items()}
