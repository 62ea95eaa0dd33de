"""Human units for durations, data and rates, both ways: "1h30m", "1GB", "2M".

Data uses decimal prefixes (1 GB = 1,000,000,000 bytes, as quota cards and phones show it);
binary ones are accepted when written out (1 GiB = 2**30). Rates are bits per second.
"None" (or "tidak", "unlimited", "-") means no limit. Every parser raises ValueError with a
message that says what was expected, so the CLI and the config loader can show it as it is.
"""

from __future__ import annotations

import re

NONE_WORDS = frozenset({"none", "unlimited", "tidak", "-", ""})

_DURATION_PART = re.compile(r"(\d+)\s*(d|h|m|s)")
_DURATION_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}

_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgt]?i?)(b|bytes?)?$")
_DECIMAL = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_BINARY = {"ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}

_RATE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmg]?)(bit|bps|b/s|bit/s)?$")


def is_none(text: str) -> bool:
    return text.strip().lower() in NONE_WORDS


def parse_duration(text: str) -> int:
    """Seconds in "90", "45s", "15m", "3h", "1d", "1h30m", "7d"; must be more than zero."""
    raw = text.strip().lower()
    if raw.isdigit():
        seconds = int(raw)
    else:
        pos, seconds = 0, 0
        compact = raw.replace(" ", "")
        for match in _DURATION_PART.finditer(compact):
            if match.start() != pos:
                break
            seconds += int(match.group(1)) * _DURATION_UNITS[match.group(2)]
            pos = match.end()
        if pos != len(compact) or not compact:
            raise ValueError(f"not a duration: {text!r} (use e.g. 30m, 3h, 1d, 1h30m)")
    if seconds <= 0:
        raise ValueError(f"duration must be more than zero: {text!r}")
    return seconds


def parse_size(text: str) -> int:
    """Bytes in "500MB", "1GB", "1.5GB", "2GiB", "1000000"; must be more than zero."""
    match = _SIZE.match(text.strip().lower().replace(" ", ""))
    if not match:
        raise ValueError(f"not a data size: {text!r} (use e.g. 500MB, 1GB, 2GiB)")
    number, prefix, _ = match.groups()
    factor = _BINARY.get(prefix) if prefix.endswith("i") else _DECIMAL.get(prefix)
    if factor is None:
        raise ValueError(f"not a data size: {text!r} (use e.g. 500MB, 1GB, 2GiB)")
    size = round(float(number) * factor)
    if size <= 0:
        raise ValueError(f"data size must be more than zero: {text!r}")
    return size


def parse_rate(text: str) -> int:
    """Bits per second in "512k", "2M", "1.5Mbit", "10mbps", "64000"; at least 8 kbit/s."""
    match = _RATE.match(text.strip().lower().replace(" ", ""))
    if not match:
        raise ValueError(f"not a rate: {text!r} (use e.g. 512k, 2M, 10M; bits per second)")
    number, prefix, _ = match.groups()
    rate = round(float(number) * _DECIMAL[prefix])
    if rate < 8000:
        raise ValueError(f"rate too low: {text!r} (at least 8k)")
    return rate


def format_duration(seconds: int | None) -> str:
    """ "1d 2h", "3h 5m", "15m", "40s"; the two largest units only, for tables and cards."""
    if seconds is None:
        return "none"
    if seconds <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return " ".join(parts[:2])


def format_size(size: int | None) -> str:
    if size is None:
        return "none"
    for unit, factor in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if size >= factor:
            value = size / factor
            return f"{value:.1f}".rstrip("0").rstrip(".") + unit
    return f"{size}B"


def format_rate(bps: int | None) -> str:
    if bps is None:
        return "none"
    for unit, factor in (("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if bps >= factor:
            value = bps / factor
            return f"{value:.2f}".rstrip("0").rstrip(".") + unit
    return f"{bps}"


def format_rupiah(amount: int) -> str:
    """ "Rp 5.000": Indonesian grouping with dots."""
    sign = "-" if amount < 0 else ""
    return f"{sign}Rp {abs(amount):,}".replace(",", ".")


def parse_price(text: str) -> int:
    """Whole Rupiah: `5000`, `5.000` or `Rp 5.000`."""
    cleaned = text.strip().lower().removeprefix("rp").strip().replace(".", "").replace(",", "")
    if not cleaned.isdigit():
        raise ValueError(f"not a price in rupiah: {text!r} (e.g. 5000)")
    return int(cleaned)


def parse_count(text: str) -> int:
    """A whole number above zero."""
    text = text.strip()
    if not text.isdigit() or int(text) <= 0:
        raise ValueError(f"not a whole number above zero: {text!r}")
    return int(text)
