"""Reconcile against the real adapters: only the difference, and a second run is a no-op."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from hotspotd.core.ports import DeviceKey, Rate
from hotspotd.core.reconcile import Desired, reconcile
from hotspotd.net.firewall import NftFirewall
from hotspotd.net.shaper import TcShaper
from tests.netns.conftest import Router
from tests.netns.lab import LAN_PREFIX, PORTAL_PORT, ROUTER_LAN

pytestmark = pytest.mark.netns


def device(n: int) -> DeviceKey:
    return DeviceKey(
        IPv4Address(f"10.66.{2 + n // 250}.{1 + n % 250}"),
        f"02:77:00:00:{n >> 8:02x}:{n & 255:02x}",
    )


ODD = Rate(2_000_005, 1_000_003)  # not whole bytes per second: the kernel rounds them


def desired(count: int) -> Desired:
    return Desired(
        authorized={device(n): ODD for n in range(count)},
        trusted=frozenset({"02:aa:00:00:00:01"}),
        blocked=frozenset({"02:bb:00:00:00:01"}),
        garden=frozenset({IPv4Address("198.18.0.3")}),
    )


def test_second_reconcile_changes_nothing_even_after_a_restart(router: Router) -> None:
    want = desired(300)
    first = reconcile(router.firewall, router.shaper, want)
    assert len(first.firewall.authorize) == 300 and len(first.shaper.set) == 300
    assert reconcile(router.firewall, router.shaper, want).is_empty()
    # A restarted daemon: new adapter objects, only the kernel remembers.
    firewall = NftFirewall(lan_interface="lan0", portal_ip=ROUTER_LAN, portal_port=PORTAL_PORT)
    shaper = TcShaper(lan_interface="lan0", lan_prefix=LAN_PREFIX, ifb="ifb0")
    try:
        firewall.setup()
        shaper.setup(Rate(100_000_000, 100_000_000))
        assert reconcile(firewall, shaper, want).is_empty()
    finally:
        firewall.close()


def test_only_the_difference_reaches_the_kernel(router: Router) -> None:
    want = desired(100)
    reconcile(router.firewall, router.shaper, want)
    authorized = dict(want.authorized)
    del authorized[device(0)]
    authorized[device(100)] = Rate(8_000_000, 2_000_000)
    authorized[device(1)] = Rate(4_000_000, None)
    changed = Desired(authorized, want.trusted, frozenset(), want.garden)
    done = reconcile(router.firewall, router.shaper, changed)
    assert done.firewall.authorize == {device(100)}
    assert done.firewall.deauthorize == {device(0)}
    assert done.firewall.unblock == {"02:bb:00:00:00:01"}
    assert dict(done.shaper.set) == {
        device(100).ip: Rate(8_000_000, 2_000_000),
        device(1).ip: Rate(4_000_000, None),
    }
    assert done.shaper.remove == {device(0).ip}
    state = router.shaper.state()
    assert state[device(1).ip] == Rate(4_000_000, None)
    assert device(0).ip not in state
    assert reconcile(router.firewall, router.shaper, changed).is_empty()
