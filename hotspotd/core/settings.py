"""The settings an admin changes without a restart: the free allowance, the welcome message, the
village's and the BUMDes' names. The config file gives the defaults; a `Setting` row overrides
one. Each value is checked by the same parsers as the config (`units`), stored as text in the
same human units, and read back through the same parsers.

`effective` gives the settings in force: the defaults overlaid with the rows. `Live` keeps the
last ones parsed and parses again only when the rows differ, so a decision may ask for them
each time. `change` is the one writer, auditing every key it sets or resets in the caller's
transaction.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session as DB

from hotspotd.core import audit, units
from hotspotd.core.models import Setting
from hotspotd.core.sessions import FreePolicy
from hotspotd.errors import InvalidInput

if TYPE_CHECKING:  # only for the type: the caller hands the defaults in
    from hotspotd.config import FreeAllowanceConfig, VillageConfig

NAME_MAX = 60
MESSAGE_MAX = 500


class Kind(enum.StrEnum):
    """What a setting holds, so the web layer words its mistakes (the refusal's reason)."""

    FLAG = "flag"
    DURATION = "duration"
    SIZE = "size"
    RATE = "rate"
    NAME = "name"
    MESSAGE = "message"


@dataclass(frozen=True)
class Settings:
    village_name: str
    village_operator: str  # the BUMDes (or RT net) that runs the hotspot
    welcome_message: str
    free: FreePolicy

    @classmethod
    def defaults(cls, village: VillageConfig, free: FreeAllowanceConfig) -> Settings:
        """What the config file says, before any row."""
        return cls(village.name, village.operator, village.message, FreePolicy.from_config(free))


@dataclass(frozen=True)
class Spec:
    key: str
    kind: Kind
    parse: Callable[[str], Any]  # text → value; ValueError says what was expected
    get: Callable[[Settings], Any]
    put: Callable[[Settings, Any], Settings]

    def text(self, value: Any) -> str:
        """A value as stored, and as the form shows it."""
        if value is None:
            return "none"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            return _exact(self.kind, value)
        return str(value)


def _exact(kind: Kind, value: int) -> str:
    """An amount in the largest units that lose nothing ("1h30m", "100MB", "512k"), so that
    what is stored and shown parses back to the very same number."""
    if kind is Kind.DURATION:
        parts, rest = [], value
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
            amount, rest = divmod(rest, size)
            if amount:
                parts.append(f"{amount}{unit}")
        return "".join(parts) or "0s"
    steps = {Kind.SIZE: (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)),
             Kind.RATE: (("G", 10**9), ("M", 10**6), ("k", 10**3))}[kind]  # fmt: skip
    for unit, size in steps:
        if value % size == 0:
            return f"{value // size}{unit}"
    return str(value)


def _flag(text: str) -> bool:
    word = text.strip().lower()
    if word in ("true", "1", "on", "yes", "ya"):
        return True
    if word in ("false", "0", "off", "no", "tidak", ""):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _limit(parse: Callable[[str], int]) -> Callable[[str], int | None]:
    """A limit as the config's `[free]` table takes one: "none" (and the like) is no limit."""

    def parsed(text: str) -> int | None:
        return None if units.is_none(text) else parse(text)

    return parsed


def _text(limit: int, required: bool) -> Callable[[str], str]:
    def parsed(text: str) -> str:
        if any(not ch.isprintable() and not ch.isspace() for ch in text):
            raise ValueError("must be plain text")
        clean = " ".join(text.split())  # one line: shown on pages and printed cards
        if required and not clean:
            raise ValueError("must not be empty")
        if len(clean) > limit:
            raise ValueError(f"at most {limit} characters")
        return clean

    return parsed


def _free(field: str) -> Callable[[Settings, Any], Settings]:
    return lambda s, v: replace(s, free=replace(s.free, **{field: v}))


SPECS: Mapping[str, Spec] = {
    spec.key: spec
    for spec in (
        Spec("village.name", Kind.NAME, _text(NAME_MAX, True), lambda s: s.village_name,
             lambda s, v: replace(s, village_name=v)),
        Spec("village.operator", Kind.NAME, _text(NAME_MAX, True), lambda s: s.village_operator,
             lambda s, v: replace(s, village_operator=v)),
        Spec("village.message", Kind.MESSAGE, _text(MESSAGE_MAX, False),
             lambda s: s.welcome_message, lambda s, v: replace(s, welcome_message=v)),
        Spec("free.enabled", Kind.FLAG, _flag, lambda s: s.free.enabled, _free("enabled")),
        Spec("free.time", Kind.DURATION, _limit(units.parse_duration), lambda s: s.free.time_s,
             _free("time_s")),
        Spec("free.data", Kind.SIZE, _limit(units.parse_size), lambda s: s.free.data_bytes,
             _free("data_bytes")),
        Spec("free.down", Kind.RATE, _limit(units.parse_rate), lambda s: s.free.down_bps,
             _free("down_bps")),
        Spec("free.up", Kind.RATE, _limit(units.parse_rate), lambda s: s.free.up_bps,
             _free("up_bps")),
    )
}  # fmt: skip

Rows = tuple[tuple[str, str], ...]


def rows(db: DB | Connection) -> Rows:
    """The stored overrides, as (key, value) in key order: what `Live` compares."""
    found = db.execute(select(Setting.key, Setting.value).order_by(Setting.key))
    return tuple((key, value) for key, value in found)


def overlay(defaults: Settings, stored: Rows) -> Settings:
    """The defaults with the stored values put over them. A row this code does not know, or
    whose value no longer parses (written by another version), leaves the default in force."""
    result = defaults
    for key, text in stored:
        spec = SPECS.get(key)
        if spec is None:
            continue
        try:
            result = spec.put(result, spec.parse(text))
        except ValueError:
            continue
    return result


def effective(db: DB, defaults: Settings) -> Settings:
    return overlay(defaults, rows(db))


class Live:
    """The settings in force, parsed again only when the stored rows change: one small query
    per decision, and no parsing unless an admin changed something."""

    def __init__(self, defaults: Settings) -> None:
        self.defaults = defaults
        self._lock = threading.Lock()
        self._rows: Rows | None = None
        self._settings = defaults

    def get(self, db: DB | Connection) -> Settings:
        return self.from_rows(rows(db))

    def from_rows(self, stored: Rows) -> Settings:
        with self._lock:
            if stored != self._rows:
                self._settings = overlay(self.defaults, stored)
                self._rows = stored
            return self._settings


class InvalidSetting(InvalidInput):
    """One value does not parse; `key` and `kind` say which and what it should be."""

    def __init__(self, key: str, kind: Kind, why: str) -> None:
        super().__init__(f"{key}: {why}", reason=f"bad_{kind.value}")
        self.key = key


def check(key: str, text: str) -> Any:
    """The value `text` gives `key`; InvalidSetting when it does not parse, or no such key."""
    spec = SPECS.get(key)
    if spec is None:
        raise InvalidInput(f"no setting {key!r}", reason="unknown_setting")
    try:
        return spec.parse(text)
    except ValueError as exc:
        raise InvalidSetting(key, spec.kind, str(exc)) from None


def change(
    db: DB,
    changes: Mapping[str, str | None],
    *,
    defaults: Settings,
    actor: str,
    now: datetime,
) -> Settings:
    """Set each key to its text, or back to the default (None). Every value is checked before
    anything is written, so one bad value changes nothing; each key changed is audited."""
    if not changes:
        raise InvalidInput("nothing to change", reason="nothing_to_change")
    unknown = sorted(set(changes) - set(SPECS))
    if unknown:
        raise InvalidInput(f"no setting {', '.join(unknown)}", reason="unknown_setting")
    parsed = {key: check(key, text) for key, text in changes.items() if text is not None}
    before = effective(db, defaults)
    for key in changes:
        spec = SPECS[key]
        row = db.get(Setting, key)
        old = spec.text(spec.get(before))
        if key not in parsed:  # back to the default
            if row is not None:
                db.delete(row)
                new = spec.text(spec.get(defaults))
                audit.record(db, now, actor, "setting.reset", key, f"{old} → {new} (default)")
            continue
        text = spec.text(parsed[key])
        if row is None:
            db.add(Setting(key=key, value=text, updated_at=now, updated_by=actor))
        elif row.value != text:
            row.value, row.updated_at, row.updated_by = text, now, actor
        else:
            continue
        audit.record(db, now, actor, "setting.change", key, f"{old} → {text}")
    db.flush()
    return effective(db, defaults)


def record(settings: Settings) -> dict[str, Any]:
    """The settings as JSON for the control socket: each key with its stored text."""
    return {key: spec.text(spec.get(settings)) for key, spec in SPECS.items()}
