from __future__ import annotations

import pytest

from hotspotd.core import units


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("45s", 45),
        ("15m", 900),
        ("3h", 10800),
        ("1d", 86400),
        ("1h30m", 5400),
        ("1d 2h", 93600),
        ("7D", 604800),
    ],
)
def test_durations(text: str, seconds: int) -> None:
    assert units.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "3x", "h", "1h30", "-5m", "0", "0s", "3h 3x", "1.5h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        units.parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1GB", 10**9),
        ("500MB", 500 * 10**6),
        ("1.5GB", 1_500_000_000),
        ("2GiB", 2 * 2**30),
        ("100kb", 100_000),
        ("1000000", 10**6),
        ("1 gb", 10**9),
    ],
)
def test_sizes(text: str, size: int) -> None:
    assert units.parse_size(text) == size


@pytest.mark.parametrize("text", ["", "GB", "1XB", "0MB", "-1GB", "1i"])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(ValueError, match="size"):
        units.parse_size(text)


@pytest.mark.parametrize(
    ("text", "bps"),
    [
        ("2M", 2_000_000),
        ("512k", 512_000),
        ("1.5Mbit", 1_500_000),
        ("10mbps", 10**7),
        ("64000", 64000),
    ],
)
def test_rates(text: str, bps: int) -> None:
    assert units.parse_rate(text) == bps


@pytest.mark.parametrize("text", ["", "fast", "2X", "1k", "0M"])
def test_bad_rates(text: str) -> None:
    with pytest.raises(ValueError, match="rate"):
        units.parse_rate(text)


def test_none_words() -> None:
    for word in ("none", "None", "unlimited", "tidak", "-"):
        assert units.is_none(word)
    assert not units.is_none("1h")


def test_formatting_round_trips_for_plan_tables() -> None:
    assert units.format_duration(5400) == "1h 30m"
    assert units.format_duration(None) == "none"
    assert units.format_size(10**9) == "1GB"
    assert units.format_size(1_500_000) == "1.5MB"
    assert units.format_rate(2_000_000) == "2M"
    assert units.format_rupiah(5000) == "Rp 5.000"
    assert units.format_rupiah(1_250_000) == "Rp 1.250.000"
    for seconds in (60, 3600, 86400, 5400):
        assert units.parse_duration(units.format_duration(seconds).replace(" ", "")) == seconds
