"""The in-memory kernel fakes keep the contract the real adapters keep."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from hotspotd.core.ports import (
    Counters,
    DeviceKey,
    Firewall,
    FirewallChange,
    Rate,
    Shaper,
    ShaperChange,
    normalize_mac,
)
from tests.fakes import FakeFirewall, FakeShaper

PHONE = DeviceKey(IPv4Address("10.66.0.10"), "AA-BB-CC-DD-EE-01")


def test_device_key_normalizes_and_refuses_garbage() -> None:
    assert PHONE.mac == "aa:bb:cc:dd:ee:01"
    assert DeviceKey("10.66.0.10", "aa:bb:cc:dd:ee:01") == PHONE  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        DeviceKey(IPv4Address("10.66.0.10"), "not-a-mac")
    with pytest.raises(ValueError):
        DeviceKey("10.66.0.300", "aa:bb:cc:dd:ee:01")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        normalize_mac("aa:bb:cc:dd:ee:01; reboot")


def test_fake_firewall_applies_changes_and_counts() -> None:
    fw: Firewall = FakeFirewall()
    with pytest.raises(RuntimeError):
        fw.apply(FirewallChange(authorize=frozenset({PHONE})))
    fw.setup()
    fw.apply(FirewallChange(authorize=frozenset({PHONE}), trust=frozenset({"aa:bb:cc:00:00:09"})))
    assert fw.state().authorized == {PHONE}
    assert fw.state().trusted == {"aa:bb:cc:00:00:09"}
    assert isinstance(fw, FakeFirewall)
    fw.add_traffic(PHONE, up=100, down=900)
    assert fw.counters() == {PHONE: Counters(100, 900)}
    fw.apply(FirewallChange(deauthorize=frozenset({PHONE})))
    assert fw.state().authorized == frozenset() and fw.counters() == {}
    assert [name for name, _ in fw.calls] == ["setup", "apply", "apply"]
    assert FirewallChange().is_empty() and not FirewallChange(block=frozenset({"x"})).is_empty()


def test_fake_shaper_sets_changes_and_removes() -> None:
    sh: Shaper = FakeShaper()
    ip = IPv4Address("10.66.0.10")
    with pytest.raises(RuntimeError):
        sh.apply(ShaperChange(set={ip: Rate(2_000_000, 1_000_000)}))
    sh.setup(Rate(20_000_000, 5_000_000))
    sh.apply(ShaperChange(set={ip: Rate(2_000_000, 1_000_000)}))
    sh.apply(ShaperChange(set={ip: Rate(4_000_000, 1_000_000)}))
    assert sh.state() == {ip: Rate(4_000_000, 1_000_000)}
    sh.apply(ShaperChange(remove=frozenset({ip})))
    assert sh.state() == {}
    assert ShaperChange().is_empty()
