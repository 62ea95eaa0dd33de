"""Reconcile planning: only the difference, and a second run changes nothing."""

from __future__ import annotations

from ipaddress import IPv4Address

from hypothesis import given, settings
from hypothesis import strategies as st

from hotspotd.core.ports import DeviceKey, FirewallState, Rate
from hotspotd.core.reconcile import Desired, apply_plan, desired_rates, plan, reconcile, same_rate
from tests.fakes import FakeFirewall, FakeShaper


def key(n: int, mac_suffix: int | None = None) -> DeviceKey:
    m = n if mac_suffix is None else mac_suffix
    return DeviceKey(IPv4Address(f"10.66.0.{n}"), f"02:00:00:00:00:{m:02x}")


def fresh() -> tuple[FakeFirewall, FakeShaper]:
    fw, sh = FakeFirewall(), FakeShaper()
    fw.setup()
    sh.setup(Rate(100_000_000, 20_000_000))
    return fw, sh


R2 = Rate(2_000_000, 1_000_000)
R8 = Rate(8_000_000, 2_000_000)


def test_from_empty_adds_everything_in_one_change_each() -> None:
    fw, sh = fresh()
    desired = Desired(
        authorized={key(2): R2, key(3): R8},
        trusted=frozenset({"02:aa:00:00:00:01"}),
        blocked=frozenset({"02:bb:00:00:00:01"}),
        garden=frozenset({IPv4Address("198.18.0.9")}),
    )
    done = reconcile(fw, sh, desired)
    assert done.firewall.authorize == {key(2), key(3)}
    assert fw.state() == FirewallState(
        authorized=frozenset({key(2), key(3)}),
        trusted=frozenset({"02:aa:00:00:00:01"}),
        blocked=frozenset({"02:bb:00:00:00:01"}),
        garden=frozenset({IPv4Address("198.18.0.9")}),
    )
    assert sh.state() == {key(2).ip: R2, key(3).ip: R8}
    assert [c for c, _ in fw.calls].count("apply") == 1
    assert [c for c, _ in sh.calls].count("apply") == 1


def test_second_reconcile_changes_nothing() -> None:
    fw, sh = fresh()
    desired = Desired(authorized={key(2): R2}, trusted=frozenset({"02:aa:00:00:00:01"}))
    reconcile(fw, sh, desired)
    calls = (len(fw.calls), len(sh.calls))
    assert reconcile(fw, sh, desired).is_empty()
    assert (len(fw.calls), len(sh.calls)) == calls


def test_only_the_difference_is_applied() -> None:
    fw, sh = fresh()
    reconcile(fw, sh, Desired(authorized={key(n): R2 for n in range(2, 50)}))
    done = reconcile(fw, sh, Desired(authorized={key(n): R2 for n in range(3, 51)}))
    assert done.firewall.authorize == {key(50)}
    assert done.firewall.deauthorize == {key(2)}
    assert dict(done.shaper.set) == {key(50).ip: R2}
    assert done.shaper.remove == {key(2).ip}


def test_rate_change_is_a_set_without_firewall_change() -> None:
    fw, sh = fresh()
    reconcile(fw, sh, Desired(authorized={key(2): R2}))
    done = reconcile(fw, sh, Desired(authorized={key(2): R8}))
    assert done.firewall.is_empty()
    assert dict(done.shaper.set) == {key(2).ip: R8}
    assert sh.state()[key(2).ip] == R8


def test_new_mac_on_same_ip_swaps_the_key_and_keeps_the_class() -> None:
    fw, sh = fresh()
    reconcile(fw, sh, Desired(authorized={key(2): R2}))
    done = reconcile(fw, sh, Desired(authorized={key(2, mac_suffix=0x99): R2}))
    assert done.firewall.deauthorize == {key(2)}
    assert done.firewall.authorize == {key(2, mac_suffix=0x99)}
    assert done.shaper.is_empty()


def test_unlimited_rate_needs_no_class() -> None:
    fw, sh = fresh()
    reconcile(fw, sh, Desired(authorized={key(2): R2}))
    done = reconcile(fw, sh, Desired(authorized={key(2): Rate()}))
    assert done.shaper.remove == {key(2).ip}
    assert key(2) in fw.state().authorized
    assert reconcile(fw, sh, Desired(authorized={key(2): Rate()})).is_empty()


def test_rates_compare_at_the_kernels_byte_granularity() -> None:
    assert same_rate(Rate(2_000_003, None), Rate(2_000_000, None))
    assert not same_rate(Rate(2_000_008, None), Rate(2_000_000, None))
    assert not same_rate(Rate(2_000_000, None), Rate(2_000_000, 1))
    # The kernel reads back 2_000_000 for 2_000_005: that is no change.
    fw, _ = fresh()
    desired = Desired(authorized={key(2): Rate(2_000_005, None)})
    assert plan(desired, fw.state(), {key(2).ip: Rate(2_000_000, None)}).shaper.is_empty()


def test_shared_address_takes_the_rate_of_the_first_key() -> None:
    rates = desired_rates({key(2, 0x10): R8, key(2, 0x11): R2})
    assert rates == {key(2).ip: R8}


def test_apply_order_shapes_before_authorizing_and_unshapes_after_deauthorizing() -> None:
    fw, sh = fresh()
    log: list[str] = []
    real_fw_apply, real_sh_apply = fw.apply, sh.apply
    fw.apply = lambda c: (log.append("fw"), real_fw_apply(c))[1]  # type: ignore[method-assign]
    sh.apply = lambda c: (log.append("sh+" if c.set else "sh-"), real_sh_apply(c))[1]  # type: ignore[method-assign]
    apply_plan(fw, sh, plan(Desired(authorized={key(2): R2}), fw.state(), sh.state()))
    assert log == ["sh+", "fw"]
    log.clear()
    apply_plan(fw, sh, plan(Desired(), fw.state(), sh.state()))
    assert log == ["fw", "sh-"]


macs = st.integers(0, 15).map(lambda n: f"02:00:00:00:01:{n:02x}")
keys = st.builds(key, st.integers(2, 40), st.integers(0, 7))
rates = st.builds(
    Rate,
    st.one_of(st.none(), st.integers(8, 10**9)),
    st.one_of(st.none(), st.integers(8, 10**9)),
)
desireds = st.builds(
    Desired,
    authorized=st.dictionaries(keys, rates, max_size=30),
    trusted=st.frozensets(macs, max_size=5),
    blocked=st.frozensets(macs, max_size=5),
    garden=st.frozensets(st.integers(1, 20).map(lambda n: IPv4Address(f"198.18.0.{n}"))),
)


@settings(max_examples=200, deadline=None)
@given(first=desireds, second=desireds)
def test_any_state_converges_and_then_stays_put(first: Desired, second: Desired) -> None:
    fw, sh = fresh()
    reconcile(fw, sh, first)
    reconcile(fw, sh, second)
    state = fw.state()
    assert state.authorized == frozenset(second.authorized)
    assert state.trusted == second.trusted
    assert state.blocked == second.blocked
    assert state.garden == second.garden
    want = desired_rates(second.authorized)
    assert sh.state().keys() == want.keys()
    assert all(same_rate(sh.state()[ip], r) for ip, r in want.items())
    assert plan(second, fw.state(), sh.state()).is_empty()
