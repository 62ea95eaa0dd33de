"""Language and formats: Bahasa Indonesia by default, English by choice or Accept-Language.

Strings live in translations/ (.po, compiled to .mo); Rupiah as "Rp 5.000"; times in the
village's time zone.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from flask import Flask, request
from flask_babel import Babel, format_datetime, format_decimal, get_locale, gettext, ngettext
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

from hotspotd.core import units

LANGUAGES = ("id", "en")
COOKIE = "lang"
ZONE_NAMES = {
    "Asia/Jakarta": "WIB",
    "Asia/Pontianak": "WIB",
    "Asia/Makassar": "WITA",
    "Asia/Jayapura": "WIT",
}


def select_locale() -> str:
    chosen = request.cookies.get(COOKIE)
    if chosen in LANGUAGES:
        return chosen
    return _best_language(request.headers.get("Accept-Language", "")[:500])


@lru_cache(maxsize=256)
def _best_language(header: str) -> str:
    """Phones send a handful of different Accept-Language headers: parse each once."""
    accepted = parse_accept_header(header, LanguageAccept)
    return accepted.best_match(LANGUAGES) or LANGUAGES[0]


def duration(seconds: int | None) -> str:
    if seconds is None:
        return gettext("unlimited")
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = []
    if days:
        parts.append(ngettext("%(num)d day", "%(num)d days", days))
    if hours:
        parts.append(ngettext("%(num)d hour", "%(num)d hours", hours))
    if minutes and not days:
        parts.append(ngettext("%(num)d minute", "%(num)d minutes", minutes))
    if not parts:
        return (
            gettext("less than a minute")
            if seconds
            else ngettext("%(num)d minute", "%(num)d minutes", 0)
        )
    return " ".join(parts)


def data_size(size: int | None) -> str:
    if size is None:
        return gettext("unlimited")
    for unit, factor in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if size >= factor:
            return f"{format_decimal(size / factor, format='#,##0.#')} {unit}"
    return f"{max(0, size)} B"


def local_time(moment: datetime | str | None, zone: str) -> str:
    if moment is None:
        return ""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    text = format_datetime(moment, "d MMM yyyy HH:mm")
    return f"{text} {ZONE_NAMES.get(zone, zone)}"


def init_app(app: Flask) -> None:
    Babel(app, locale_selector=select_locale)
    app.jinja_env.filters["duration"] = duration
    app.jinja_env.filters["data_size"] = data_size
    app.jinja_env.filters["rupiah"] = units.format_rupiah
    app.jinja_env.globals["local_time"] = local_time
    app.jinja_env.globals["locale"] = lambda: str(get_locale() or LANGUAGES[0])
