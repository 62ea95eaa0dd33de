"""Session accounting: pure functions of plan, usage and now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from hotspotd.core import accounting as acc
from hotspotd.core.accounting import Allowance, EndReason, Usage
from hotspotd.core.models import VoucherState

T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
HARIAN = Allowance(validity_s=86400, time_s=3 * 3600, data_bytes=10**9, idle_s=900)

limits = st.one_of(st.none(), st.integers(1, 10**7))
allowances = st.builds(
    Allowance, validity_s=limits, time_s=limits, data_bytes=limits, idle_s=limits
)
usages = st.builds(
    Usage,
    first_used_at=st.one_of(st.none(), st.just(T0)),
    used_seconds=st.integers(0, 10**7),
    used_bytes=st.integers(0, 10**10),
)
offsets = st.integers(0, 10**8)


def test_unused_voucher_has_its_whole_allowance() -> None:
    s = acc.standing(HARIAN, Usage(), T0)
    assert s.seconds_left == 3 * 3600
    assert s.data_left == 10**9
    assert s.valid_until is None
    assert s.end_reason is None


def test_first_use_starts_validity_once() -> None:
    u = acc.start(Usage(), T0)
    assert u.first_used_at == T0
    assert acc.start(u, T0 + timedelta(hours=5)).first_used_at == T0
    assert acc.valid_until(HARIAN, u) == T0 + timedelta(days=1)


def test_time_left_is_capped_by_validity() -> None:
    u = Usage(T0, used_seconds=600)
    # 23h 30m after first use only 30 minutes of validity remain, though 2h50m of time do.
    now = T0 + timedelta(hours=23, minutes=30)
    assert acc.seconds_left(HARIAN, u, now) == 1800
    assert acc.seconds_left(HARIAN, u, T0 + timedelta(hours=1)) == 3 * 3600 - 600


def test_each_end_reason() -> None:
    active = Usage(T0, used_seconds=60, used_bytes=1000)
    assert acc.end_reason(HARIAN, active, T0 + timedelta(minutes=5)) is None
    assert acc.end_reason(HARIAN, active, T0 + timedelta(days=1)) is EndReason.VALIDITY
    assert acc.end_reason(HARIAN, Usage(T0, used_seconds=3 * 3600), T0) is EndReason.TIME
    assert acc.end_reason(HARIAN, Usage(T0, used_bytes=10**9), T0) is EndReason.DATA
    now = T0 + timedelta(minutes=30)
    assert (
        acc.end_reason(HARIAN, active, now, last_activity_at=now - timedelta(minutes=15))
        is EndReason.IDLE
    )
    assert acc.end_reason(HARIAN, active, now, last_activity_at=now - timedelta(minutes=14)) is None


def test_validity_waits_for_a_trusted_clock() -> None:
    u = Usage(T0)
    later = T0 + timedelta(days=3)
    assert acc.end_reason(HARIAN, u, later) is EndReason.VALIDITY
    assert acc.end_reason(HARIAN, u, later, clock_trusted=False) is None


def test_no_limits_means_never_ending() -> None:
    u = Usage(T0, used_seconds=10**9, used_bytes=10**15)
    far = T0 + timedelta(days=3650)
    assert acc.end_reason(Allowance(), u, far, last_activity_at=T0) is None
    assert acc.seconds_left(Allowance(), u, far) is None
    assert acc.data_left(Allowance(), u) is None


def test_accrue_refuses_negative_usage() -> None:
    import pytest

    with pytest.raises(ValueError, match="only grows"):
        acc.accrue(Usage(T0), seconds=-1, bytes_used=0)
    with pytest.raises(ValueError, match="only grows"):
        acc.accrue(Usage(T0), seconds=0, bytes_used=-5)


def test_voucher_state_follows_the_allowance() -> None:
    active = VoucherState.ACTIVE
    assert acc.voucher_state(active, HARIAN, Usage(T0), T0) is VoucherState.ACTIVE
    assert (
        acc.voucher_state(active, HARIAN, Usage(T0), T0 + timedelta(days=2)) is VoucherState.EXPIRED
    )
    assert (
        acc.voucher_state(active, HARIAN, Usage(T0, used_bytes=10**9), T0) is VoucherState.USED_UP
    )
    revoked = VoucherState.REVOKED
    assert acc.voucher_state(revoked, HARIAN, Usage(T0), T0) is VoucherState.REVOKED
    unused = VoucherState.UNUSED
    assert acc.voucher_state(unused, HARIAN, Usage(), T0 + timedelta(days=400)) is unused


@given(allowances, usages, offsets)
def test_property_left_never_negative_and_zero_means_end(a: Allowance, u: Usage, dt: int) -> None:
    now = T0 + timedelta(seconds=dt)
    s = acc.standing(a, u, now)
    for left in (s.seconds_left, s.data_left):
        assert left is None or left >= 0
    if s.data_left == 0:
        assert s.end_reason is not None
    if s.seconds_left == 0 and u.first_used_at is not None:
        assert s.end_reason in (EndReason.VALIDITY, EndReason.TIME)
    if s.end_reason is None:
        assert s.seconds_left is None or s.seconds_left > 0
        assert s.data_left is None or s.data_left > 0


@given(allowances, usages, offsets, st.integers(0, 10**6), st.integers(0, 10**9))
def test_property_using_more_never_gives_more(
    a: Allowance, u: Usage, dt: int, more_s: int, more_b: int
) -> None:
    now = T0 + timedelta(seconds=dt)
    before = acc.standing(a, u, now)
    after = acc.standing(a, acc.accrue(u, seconds=more_s, bytes_used=more_b), now)
    if before.seconds_left is not None:
        assert after.seconds_left is not None and after.seconds_left <= before.seconds_left
    if before.data_left is not None:
        assert after.data_left is not None and after.data_left <= before.data_left
    if before.end_reason is not None:
        assert after.end_reason is not None  # an ended voucher never comes back


@given(allowances, usages, offsets, st.integers(0, 10**8))
def test_property_time_only_moves_forward(a: Allowance, u: Usage, dt: int, later: int) -> None:
    now = T0 + timedelta(seconds=dt)
    first = acc.standing(a, u, now)
    second = acc.standing(a, u, now + timedelta(seconds=later))
    if first.seconds_left is not None:
        assert second.seconds_left is not None and second.seconds_left <= first.seconds_left
    if first.end_reason in (EndReason.VALIDITY, EndReason.TIME, EndReason.DATA):
        assert second.end_reason is not None


@given(
    allowances,
    usages,
    st.integers(0, 10**6),
    st.integers(0, 10**9),
    st.integers(0, 10**6),
    st.integers(0, 10**9),
)
def test_property_devices_share_one_allowance(
    a: Allowance, u: Usage, s1: int, b1: int, s2: int, b2: int
) -> None:
    """Charging two devices' usage one after the other equals charging their sum."""
    apart = acc.accrue(acc.accrue(u, seconds=s1, bytes_used=b1), seconds=s2, bytes_used=b2)
    together = acc.accrue(u, seconds=s1 + s2, bytes_used=b1 + b2)
    assert apart == together
    assert acc.data_left(a, apart) == acc.data_left(a, together)
