"""The `online` operation a page at a time: hotspotd sorts by the rates it holds, searches in
the database and loads only the devices on the page; without parameters, the whole list."""

# ruff: noqa: F811  (pytest fixtures imported from test_daemon are used as parameters)

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from ipaddress import IPv4Address
from typing import Any

import pytest
from sqlalchemy import event, select

from hotspotd.core import codes
from hotspotd.core import db as dbmod
from hotspotd.core.models import Device, Session
from hotspotd.core.ports import DeviceKey
from hotspotd.errors import InvalidInput
from tests.unit.test_daemon import Rig, cfg, codes_, rig  # noqa: F401

# Addresses chosen so that a sort on the text would differ from one on the number (.9 < .10).
PHONES = [DeviceKey(IPv4Address(f"10.66.0.{n}"), f"02:00:00:00:01:{n:02x}") for n in (9, 10, 30)]
FREE = [DeviceKey(IPv4Address(f"10.66.0.{n}"), f"02:00:00:00:02:{n:02x}") for n in (4, 100, 21)]
DOWN = {  # bytes down in the 10 s between the two polls; up is a tenth of it
    PHONES[0]: 0,
    PHONES[1]: 0,
    PHONES[2]: 5_000,
    FREE[0]: 900_000,
    FREE[1]: 0,
    FREE[2]: 40_000,
}
BUSIEST = ["10.66.0.4", "10.66.0.21", "10.66.0.30", "10.66.0.9", "10.66.0.10", "10.66.0.100"]


@pytest.fixture
def village(rig: Rig, codes_: list[str]) -> Rig:
    """Six devices online, three on cards and three free, each downloading its own amount."""
    for key in PHONES + FREE:
        rig.macs[key.ip] = key.mac
    for key, code in zip(PHONES, codes_, strict=True):
        rig.call("login", ip=str(key.ip), code=code)
    for key in FREE:
        rig.call("login", ip=str(key.ip), free=True)
    with dbmod.make_sessionmaker(rig.d.engine).begin() as tx:
        named = {PHONES[1].mac: "HP-Siti", FREE[1].mac: "laptop_pak_rt"}
        for device in tx.scalars(select(Device).where(Device.mac.in_(named))):
            device.hostname = named[device.mac]
    rig.clock.advance(seconds=10)
    for key, down in DOWN.items():
        rig.fw.add_traffic(key, up=down // 10, down=down)
    rig.d.tick()
    return rig


def page(rig: Rig, **params: object) -> dict[str, Any]:
    answer = rig.operator("online", **params)
    assert isinstance(answer, dict), answer
    return answer


def ips(answer: dict[str, Any]) -> list[str]:
    return [row["ip"] for row in answer["devices"]]


def test_the_busiest_come_first_a_page_at_a_time(village: Rig) -> None:
    pages = [page(village, page=n, per_page=4) for n in (1, 2)]
    assert [ips(p) for p in pages] == [BUSIEST[:4], BUSIEST[4:]]
    assert [(p["page"], p["pages"], p["online"], p["found"], p["per_page"]) for p in pages] == [
        (1, 2, 6, 6, 4),
        (2, 2, 6, 6, 4),
    ]
    top = pages[0]["devices"][0]
    assert (top["down_bps"], top["up_bps"]) == (900_000 * 8 // 10, 90_000 * 8 // 10)
    assert page(village, page=99, per_page=4)["page"] == 2  # past the end: the last page
    assert ips(page(village, per_page=2)) == BUSIEST[:2]  # page 1 unless said
    assert ips(page(village, page=1)) == BUSIEST  # 25 a page unless said


def test_by_address_as_numbers(village: Rig) -> None:
    assert ips(page(village, order="address")) == sorted(BUSIEST, key=IPv4Address)


def test_found_by_a_part_of_address_mac_name_or_code(village: Rig, codes_: list[str]) -> None:
    def found(text: str) -> list[str]:
        answer = page(village, find=text, order="address")
        assert answer["online"] == 6 and answer["found"] == len(answer["devices"])
        return ips(answer)

    assert found("0.10") == ["10.66.0.10", "10.66.0.100"]
    assert found("02-00-00-00-02-64") == ["10.66.0.100"]  # a MAC with dashes, any case
    assert found("02:00:00:00:01:1E") == ["10.66.0.30"]
    assert found("hp-s") == ["10.66.0.10"]  # the name its DHCP request gave
    shown = codes.display(codes_[2])  # ABC-DEF-GHJ
    assert found(shown.lower()) == found(codes_[2][2:6]) == ["10.66.0.30"]
    assert found("  " + shown[4:7] + "  ") == ["10.66.0.30"]  # spaces around are dropped
    assert found("zzz") == []
    assert found("%") == []  # a wildcard is only itself
    assert found("_") == ["10.66.0.100"]  # the one name with an underscore in it
    assert found("laptop_pak") == ["10.66.0.100"]
    assert found("lapto%") == []
    missing = page(village, find="zzz", page=3)
    assert (missing["page"], missing["pages"], missing["found"]) == (1, 1, 0)


def test_only_the_page_shown_is_loaded(village: Rig) -> None:
    loaded = []

    def on_load(target: Session, context: object) -> None:
        loaded.append(target.ip)

    with listening(Session, "load", on_load):
        answer = page(village, page=2, per_page=2)
    assert sorted(loaded) == sorted(ips(answer)) == sorted(BUSIEST[2:4])
    loaded.clear()
    with listening(Session, "load", on_load):
        everyone = village.operator("online")
    assert len(loaded) == 6 and isinstance(everyone, list)


def test_without_parameters_every_device_as_before(village: Rig) -> None:
    everyone = village.operator("online")
    assert isinstance(everyone, list)
    by_session = [row["ip"] for row in everyone]
    assert by_session == [str(key.ip) for key in PHONES + FREE]  # in the order they logged in
    paged = {row["ip"]: row for row in page(village, page=1)["devices"]}
    assert {row["ip"]: row for row in everyone} == paged  # the same records either way


@pytest.mark.parametrize(
    ("params", "why"),
    [
        ({"page": 0}, "'page' must be a whole number from 1"),
        ({"page": "2"}, "'page' must be a whole number"),
        ({"per_page": 101}, "'per_page' must be a whole number from 1 to 100"),
        ({"per_page": 0}, "'per_page'"),
        ({"order": "fastest"}, "'order' must be one of: busiest, address"),
        ({"find": "x" * 41}, "'find' must be text of at most 40"),
        ({"find": 5}, "'find' must be text"),
        ({"q": "x"}, "unexpected parameter"),
    ],
)
def test_bounded_parameters(village: Rig, params: dict[str, object], why: str) -> None:
    with pytest.raises(InvalidInput, match=why):
        village.operator("online", **params)


@contextlib.contextmanager
def listening(target: Any, name: str, fn: Any) -> Iterator[None]:
    """An ORM event listener for the duration of a `with`."""
    event.listen(target, name, fn)
    try:
        yield
    finally:
        event.remove(target, name, fn)
